"""The looks of an adaptive run (results.OpenCells): after every round the cells that a
claim's comparison leaves open, each look reading only the trials stored since the last,
and deciding at every look what a full read of the run decides."""

from __future__ import annotations

import dataclasses
import random

import pytest

from pipeline import app, results
from pipeline.execution.trial import Measurement, TrialRequest
from pipeline.storage import store

from .helpers import fake_execute

SPEC = """\
name: looks
repetitions: {min: 3, max: 12}
pair_rounds: true
warmup: 0
matrix:
  task: [cpu_pure]
  model: [sequential, threads, processes]
  workers: [1, 2, 4]
  payload: [1KiB]
exclude:
  - {model: sequential, workers: [2, 4]}
  - {model: processes, workers: 1}
"""
# seconds a trial: threads x2 against threads x1 sits on the 10% margin, so its claim
# stays open for rounds while the others are decided early
TIMES = {("sequential", 1): 0.4, ("threads", 1): 0.4, ("threads", 2): 0.364}
TIMES |= {("threads", 4): 0.4, ("processes", 2): 0.2, ("processes", 4): 0.1}


def test_each_look_reads_only_the_new_trials_and_decides_as_a_full_read(
    write_spec, db_url, monkeypatch
) -> None:
    noise = random.Random(7)

    def noisy(request: TrialRequest) -> Measurement:
        measured = fake_execute(request)
        seconds = TIMES[request.model, request.workers] * noise.lognormvariate(0.0, 0.1)
        return dataclasses.replace(measured, result={**measured.result, "work_s": seconds})

    read: list[int | None] = []
    trials_frame = store.Store.trials_frame

    def spied(self, run_id: int, *, after_sequence: int | None = None):  # type: ignore[no-untyped-def]
        read.append(after_sequence)
        return trials_frame(self, run_id, after_sequence=after_sequence)

    looks: list[tuple[int, int, set[int]]] = []  # trials before, after, open cells
    look = results.OpenCells.__call__

    def checked(self: results.OpenCells) -> set[int]:
        before = len(self.trials)
        found = look(self)
        full = results.OpenCells(self.store, self.run_id)  # reads the run whole
        assert found == look(full)
        assert self.trials["sequence"].tolist() == full.trials["sequence"].tolist()
        assert self.trials["wall_s"].tolist() == full.trials["wall_s"].tolist()
        looks.append((before, len(self.trials), found))
        return found

    monkeypatch.setattr(store.Store, "trials_frame", spied)
    monkeypatch.setattr(results.OpenCells, "__call__", checked)
    app.run(app.plan(write_spec(SPEC)), db_url, execute=noisy, reports_dir=None)

    assert len(looks) >= 4
    assert looks[0][0] == 0  # the first look read the first rounds whole
    assert all(after == looks[i + 1][0] for i, (_, after, _) in enumerate(looks[:-1]))
    assert any(found for _, _, found in looks)  # some rounds had cells to go to
    # the run's own looks asked for what came after the last trial they had, the full
    # reads (and the summary at the end) for everything
    incremental = [after for after in read if after is not None]
    assert len(incremental) == len(looks) - 1
    assert incremental == sorted(incremental)


@pytest.mark.parametrize("after", [None, 5])
def test_trials_come_in_order_of_sequence_after_the_one_given(write_spec, db_url, after) -> None:
    app.run(app.plan(write_spec(SPEC.replace("max: 12", "max: 3"))), db_url,
            execute=fake_execute, reports_dir=None)  # fmt: skip
    trials = store.Store(db_url).trials_frame(1, after_sequence=after)
    sequences = trials["sequence"].tolist()
    assert sequences == sorted(sequences)
    assert len(sequences) == 6 * 3 - (0 if after is None else after + 1)
    assert after is None or min(sequences) == after + 1
