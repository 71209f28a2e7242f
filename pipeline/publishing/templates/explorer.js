// The explorer's behaviour: filters, the plot (plotly.js), the compare table and the
// verdicts across runs, all from the JSON in #explorer-data. Text goes in as text
// (textContent), never as HTML.
"use strict";
const DATA = JSON.parse(document.getElementById("explorer-data").textContent);
const METRICS = {
  wall: { y: "median_wall_s", low: "ci_low_wall_s", high: "ci_high_wall_s", label: "median wall time (s)" },
  speedup: { y: "speedup", low: "speedup_ci_low", high: "speedup_ci_high", label: "speedup over sequential" },
  memory: { y: "median_peak_uss_bytes", label: "peak USS (bytes)" },
  startup: { y: "median_startup_s", label: "start-up (s)" },
};
const SERIES = ["task", "variant", "model", "payload_bytes", "interpreter", "host"];
// plotly reads tags (<a href>, <b>, <span style>) in trace names as markup: names go in
// with & < > as entities, so a hostile name is shown as the text it is
const plotText = (text) => String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const runName = (id) => { const run = DATA.runs.find((r) => r.id === id); return `#${id} ${run ? run.name : ""}`; };

function element(tag, text, attributes) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  return node;
}

function buildControls() {
  const runs = document.getElementById("runs");
  for (const run of DATA.runs) {
    const label = element("label");
    const box = element("input", null, { type: "checkbox", value: String(run.id), "data-run": String(run.id) });
    box.checked = run.cells > 0;
    box.disabled = run.cells === 0;
    box.addEventListener("change", draw);
    label.append(box, ` #${run.id} ${run.name} (${run.started_at}, ${run.status}, ${run.cells} cells)`);
    runs.append(label);
  }
  const filters = document.getElementById("filters");
  for (const axis of DATA.axes) {
    const values = [...new Set(DATA.cells.map((c) => c[axis]).filter((v) => v !== null && v !== ""))];
    values.sort((a, b) => (typeof a === "number" ? a - b : String(a).localeCompare(String(b))));
    if (values.length === 0) continue;
    const select = element("select", null, { "data-axis": axis });
    select.append(element("option", "all", { value: "" }));
    for (const value of values) select.append(element("option", value, { value: String(value) }));
    select.addEventListener("change", draw);
    const label = element("label", axis);
    label.append(select);
    filters.append(label);
  }
  document.getElementById("metric").addEventListener("change", draw);
  // compare: runs, and the hosts of runs that ran on several ("3@alpha")
  const choices = [];
  for (const run of DATA.runs.filter((r) => r.cells > 0)) {
    choices.push([String(run.id), runName(run.id)]);
    const hosts = [...new Set(DATA.cells.filter((c) => c.run_id === run.id && c.host).map((c) => c.host))].sort();
    if (hosts.length > 1) for (const host of hosts) choices.push([`${run.id}@${host}`, `${runName(run.id)}, host ${host}`]);
  }
  for (const side of ["a", "b"]) {
    const select = document.getElementById(`compare-${side}`);
    for (const [value, text] of choices) select.append(element("option", text, { value }));
    select.addEventListener("change", drawCompare);
  }
  const measured = DATA.runs.filter((r) => r.cells > 0);
  if (measured.length > 1) {
    document.getElementById("compare-a").value = String(measured[measured.length - 2].id);
    document.getElementById("compare-b").value = String(measured[measured.length - 1].id);
  }
}

function visibleCells() {
  const runs = new Set([...document.querySelectorAll("#runs input:checked")].map((b) => Number(b.value)));
  const chosen = [...document.querySelectorAll("#filters select")].filter((s) => s.value !== "");
  return DATA.cells.filter((cell) => runs.has(cell.run_id) && chosen.every((s) => String(cell[s.dataset.axis]) === s.value));
}

function draw() {
  const metric = METRICS[document.getElementById("metric").value];
  const groups = new Map();
  for (const cell of visibleCells()) {
    if (cell[metric.y] === null || cell[metric.y] === undefined) continue;
    const key = [cell.run_id, ...SERIES.map((axis) => cell[axis])].join("\u0001");
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(cell);
  }
  const traces = [];
  for (const cells of groups.values()) {
    cells.sort((a, b) => a.workers - b.workers);
    const first = cells[0];
    const parts = SERIES.filter((axis) => first[axis] !== null && first[axis] !== "").map((axis) => (axis === "payload_bytes" ? `${first[axis]} B` : first[axis]));
    const trace = {
      type: "scatter", mode: "lines+markers",
      name: plotText(`${runName(first.run_id)}: ${parts.join(" ")}`),
      x: cells.map((c) => c.workers), y: cells.map((c) => c[metric.y]),
      meta: { run_id: first.run_id, ...Object.fromEntries(SERIES.map((axis) => [axis, first[axis]])) },
      hovertemplate: `%{fullData.name}<br>workers %{x}<br>${metric.label} %{y:.4g}<extra></extra>`,
    };
    if (metric.low) {
      trace.error_y = {
        type: "data", symmetric: false,
        array: cells.map((c) => (c[metric.high] === null ? 0 : c[metric.high] - c[metric.y])),
        arrayminus: cells.map((c) => (c[metric.low] === null ? 0 : c[metric.y] - c[metric.low])),
      };
      trace.customdata = cells.map((c) => [c[metric.low], c[metric.high]]);
      trace.hovertemplate = `%{fullData.name}<br>workers %{x}<br>${metric.label} %{y:.4g} [%{customdata[0]:.4g}, %{customdata[1]:.4g}]<extra></extra>`;
    }
    traces.push(trace);
  }
  document.getElementById("shown").textContent = `${traces.length} series, ${traces.reduce((n, t) => n + t.x.length, 0)} cells`;
  Plotly.react("plot", traces, {
    xaxis: { title: { text: "workers" }, type: "log", dtick: Math.log10(2) },
    yaxis: { title: { text: metric.label }, rangemode: "tozero" },
    margin: { t: 20 }, showlegend: true, legend: { orientation: "h", y: -0.2 },
  }, { displaylogo: false, responsive: true });
}

function drawCompare() {
  const a = document.getElementById("compare-a").value;
  const b = document.getElementById("compare-b").value;
  const table = document.getElementById("compare");
  const note = document.getElementById("compare-note");
  table.tHead.replaceChildren();
  table.tBodies[0].replaceChildren();
  note.textContent = "";
  const [runA, hostA] = a.split("@");
  const [runB, hostB] = b.split("@");
  let found, names;
  if (hostA === undefined && hostB === undefined && runA !== runB) {
    const [first, second] = Number(runA) < Number(runB) ? [runA, runB] : [runB, runA];
    found = DATA.compared.find((p) => p.host_a === null && String(p.run_a) === first && String(p.run_b) === second);
    names = [runName(Number(first)), runName(Number(second)), `pipeline compare ${first} ${second}`];
  } else if (hostA !== undefined && hostB !== undefined && runA === runB && hostA !== hostB) {
    const [first, second] = [hostA, hostB].sort();
    found = DATA.compared.find((p) => String(p.run_a) === runA && p.host_a === first && p.host_b === second);
    names = [`host ${first}`, `host ${second}`, `pipeline compare ${runA} --hosts ${first} ${second}`];
  } else { note.textContent = "Choose two different runs, or two hosts of one run."; return; }
  if (!found) { note.textContent = `Not carried by this page: ${names[2]}`; return; }
  const rows = found.rows;
  note.textContent = `A = ${names[0]}, B = ${names[1]}; change of B against A.`;
  if (rows.length === 0) { note.textContent += " They share no cell (the same task, model, workers, payload and interpreter)."; return; }
  const percent = (value) => (value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)}%`);
  const seconds = (value) => (value === null || value === undefined ? "–" : `${Number(value.toPrecision(4))} s`);
  const columns = [
    ["cell", (r) => [r.task, r.variant, r.model, `x${r.workers}`, `${r.payload_bytes} B`].filter((p) => p).join(" ")],
    ["trials A / B", (r) => `${r.n_first} / ${r.n_second}`],
    ["median A", (r) => seconds(r.median_first_s)],
    ["median B", (r) => seconds(r.median_second_s)],
    ["change", (r) => percent(r.change)],
    ["interval", (r) => `[${percent(r.change_ci_low)}, ${percent(r.change_ci_high)}] at ${percent(r.level)}`],
    ["verdict", (r) => r.verdict],
  ];
  const head = element("tr");
  for (const [name] of columns) head.append(element("th", name, { scope: "col" }));
  table.tHead.append(head);
  for (const row of rows) {
    const line = element("tr", null, { "data-verdict": row.verdict });
    for (const [name, text] of columns) {
      const cell = element("td", text(row));
      cell.className = name === "verdict" ? `verdict-${String(row.verdict).replace(/ /g, "-")}` : (name === "cell" ? "" : "num");
      line.append(cell);
    }
    table.tBodies[0].append(line);
  }
}

function drawVerdicts() {
  const table = document.getElementById("verdicts");
  const runs = DATA.runs.filter((r) => DATA.verdicts.some((v) => v.run_id === r.id));
  const claims = [...new Map(DATA.verdicts.map((v) => [v.claim, v.title])).entries()];
  const head = element("tr");
  head.append(element("th", "claim", { scope: "col" }));
  for (const run of runs) head.append(element("th", `${runName(run.id)} (${run.started_at})`, { scope: "col" }));
  table.tHead.append(head);
  for (const [claim, title] of claims) {
    const line = element("tr", null, { "data-claim": claim });
    line.append(element("th", title, { scope: "row" }));
    for (const run of runs) {
      const found = DATA.verdicts.find((v) => v.run_id === run.id && v.claim === claim);
      const cell = element("td", found ? found.verdict : "–", found ? { title: found.headline || "", class: `verdict-${found.verdict.replace(/ /g, "-")}` } : {});
      line.append(cell);
    }
    table.tBodies[0].append(line);
  }
}

buildControls();
draw();
drawCompare();
drawVerdicts();
