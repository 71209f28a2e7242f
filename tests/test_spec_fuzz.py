"""Any YAML at all, generated: a spec is accepted, or refused with one line and exit 2;
never a traceback."""

from __future__ import annotations

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipeline.cli import cli

from .test_spec import GOOD

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.dates()
    | st.sampled_from(["1KiB", "4 MiB", "io_sleep", "threads", "mod:fn", ".inf", "-1"])
)


_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


_KEYS = [
    "name",
    "repetitions",
    "budget",
    "warmup",
    "timeout",
    "margin",
    "pair_rounds",
    "hosts",
    "seed",
    "items",
    "max_workers",
    "limits",
    "params",
    "exclude",
    "python_path",
]


_AXES = ["task", "model", "workers", "payload", "interpreter"]


@settings(max_examples=200, deadline=None, derandomize=True)  # the same specs in every run
@given(
    top=st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=4),
    axes=st.dictionaries(st.sampled_from(_AXES), _VALUES, max_size=2),
)
@example(top={"repetitions": {"\n": None}}, axes={})  # a key with a line break: one line still
def test_no_spec_gets_a_traceback(tmp_path_factory, top, axes) -> None:
    """Whatever a spec holds, `pipeline run --dry-run` plans it or refuses it with one
    line and exit 2: never a traceback."""
    folder = tmp_path_factory.mktemp("fuzz")
    spec = yaml.safe_load(GOOD)
    spec.update(top)
    spec["matrix"].update(axes)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    result = CliRunner().invoke(
        cli, ["run", str(path), "--dry-run", "--db", f"sqlite:///{folder / 'x.db'}"]
    )
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.stderr.startswith("error: "), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    assert not (folder / "x.db").exists()
