"""Does ``pipeline advise`` give each archetype its answer, every time, within its budget?
Runs every archetype of tests/advise_examples.py RUNS times in a row (the default budget,
on the interpreters this machine offers) and prints each answer, its time, and how many
were right.

    python -m benchmarks.advise [RUNS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from pipeline import app

EXAMPLES = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(EXAMPLES))
from advise_examples import ARCHETYPES, right  # type: ignore[import-not-found]  # noqa: E402


def main(runs: int) -> None:
    print(f"pipeline advise on {len(ARCHETYPES)} archetypes, {runs} runs each, default budget")
    tally = {}
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder, 'advise.db')}"
        for function, (inputs, _) in ARCHETYPES.items():
            good = 0
            for number in range(1, runs + 1):
                started_s = time.perf_counter()
                found = app.advise(
                    f"advise_examples:{function}",
                    url,
                    inputs=f"advise_examples:{inputs}" if inputs else "",
                    python_path=[EXAMPLES],
                    reports_dir=None,
                )
                elapsed_s = time.perf_counter() - started_s
                ok = right(function, found.answer)
                good += ok
                print(
                    f"{function:12} run {number}: {elapsed_s:5.1f} s "
                    f"{'right' if ok else 'WRONG'}: {found.answer.headline}"
                )
            tally[function] = good
    print(
        "right answers: "
        + ", ".join(f"{function} {good} of {runs}" for function, good in tally.items())
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
