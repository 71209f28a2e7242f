"""The explainer's claims as this lab tests them: each claim's statement, the cells it
rests on, its title for tables and the sentence each verdict prints (claims.py decides).

Summary sentences are format strings over: {best} and {ratio} (the comparison with the
highest ratio), {gains} and {n} (series that gained, of all series: a series is the worker
counts of one model on one task, variant, payload, interpreter and host), {carried} (the
worker count that carried each gaining series, with its ratio), {open} (undecided series),
{margin} and {baseline} (what the speedups are against: 'sequential', or 'threads ×1'
for a claim compared with one worker).
"""

from __future__ import annotations

from typing import NamedTuple

from ..status import Verdict
from ..worker.concurrency import PROCESS_MODELS
from .evidence import IO_TASKS


class SpeedupClaim(NamedTuple):
    """A claim about whether some models speed some tasks up against a baseline: the
    sequential cell, or with ``one_worker`` the same model with one worker where the run
    has it."""

    tasks: tuple[str, ...]
    models: tuple[str, ...]
    statement: str
    expect_gain: bool
    explain: dict[str, str]  # summary per verdict, and "missing"
    gil: bool | None = None  # only cells that ran with the GIL on (True) or off (False)
    # against the same model with one worker where the run has it, not sequential: a claim
    # about parallel execution, where one worker runs the same code on the same kind of
    # thread and only the parallelism differs (docs/statistics.md: threads faster than
    # sequential without parallelism)
    one_worker: bool = False


BEST = " (best: {best}, {ratio:.2f}×)"
CARRIED = " ({carried})"
EVERY_COUNT = " at every worker count"

SPEEDUP_CLAIMS = {
    "gil_threads_cpu": SpeedupClaim(
        ("cpu_pure",),
        ("threads",),
        "Threads cannot run pure-Python CPU work in parallel: under the GIL they give no speedup.",
        False,
        {
            "missing": "no cpu_pure cells with threads and a baseline (threads ×1 or sequential)",
            Verdict.SUPPORTED: "threads ruled a gain over {baseline} out" + EVERY_COUNT + BEST,
            Verdict.CONTRADICTED: "threads ran pure-Python CPU work faster than {baseline} "
            "in {gains} of {n} series" + CARRIED + ", though the GIL was on",
            Verdict.NUANCED: "threads gained over {baseline} in {gains} of {n} series" + CARRIED,
        },
        gil=True,
        one_worker=True,
    ),
    "free_threading": SpeedupClaim(
        ("cpu_pure",),
        ("threads",),
        "Python threads can never run Python code in parallel (the explainer predates "
        "free-threaded CPython, 3.13 and later, where the GIL can be off).",
        False,
        {
            "missing": "no cpu_pure threads cells ran with the GIL off: add a free-threaded "
            "interpreter with PYTHON_GIL=0 (make python-ft; experiments/interpreters.yaml)",
            Verdict.SUPPORTED: "even with the GIL off, threads ruled a gain over {baseline} out"
            + EVERY_COUNT
            + BEST,
            Verdict.CONTRADICTED: "out of date: with the GIL off (free-threaded build) threads ran "
            "pure-Python CPU work in parallel in {gains} of {n} series" + CARRIED,
            Verdict.NUANCED: "with the GIL off threads gained over {baseline} in {gains} of {n} "
            "series" + CARRIED,
        },
        gil=False,
        one_worker=True,
    ),
    "subinterpreters": SpeedupClaim(
        ("cpu_pure",),
        ("subinterpreters",),
        "Only processes get around the GIL for CPU work (the explainer predates "
        "subinterpreters, each with a GIL of its own: InterpreterPoolExecutor, Python 3.14).",
        False,
        {
            "missing": "no subinterpreters cells of cpu_pure ran: they need Python 3.14 or "
            "later, or the interpreters-pep-734 backport (skipped cells say why)",
            Verdict.SUPPORTED: "subinterpreters ruled a gain over sequential out"
            + EVERY_COUNT
            + BEST,
            Verdict.CONTRADICTED: "out of date: subinterpreters ran pure-Python CPU work in "
            "parallel in {gains} of {n} series" + CARRIED,
            Verdict.NUANCED: "subinterpreters gained in {gains} of {n} series"
            + CARRIED
            + "; compare "
            "the payloads of the others: every item's arguments are pickled into the "
            "interpreter that runs it",
        },
    ),
    "processes_cpu": SpeedupClaim(
        ("cpu_pure",),
        PROCESS_MODELS,
        "Processes run CPU-bound work in parallel on several cores.",
        True,
        {
            "missing": "no cpu_pure cells with processes and a sequential baseline",
            Verdict.SUPPORTED: "processes beat sequential in every series" + CARRIED,
            Verdict.CONTRADICTED: "processes ruled a gain over sequential out on cpu_pure"
            + EVERY_COUNT
            + BEST,
            Verdict.NUANCED: "processes beat sequential in {gains} of {n} series"
            + CARRIED
            + "; the "
            "others had too few cores or too much overhead",
        },
    ),
    "gil_released_c_code": SpeedupClaim(
        ("cpu_gil_released",),
        ("threads",),
        "CPU-bound work gains nothing from threads (the explainer makes no exception for C "
        "code that releases the GIL).",
        False,
        {
            "missing": "no cpu_gil_released cells with threads and a sequential baseline",
            Verdict.SUPPORTED: "threads ruled a gain on the C work out" + EVERY_COUNT + BEST + "; "
            "payloads under 2 KiB keep hashlib's GIL held",
            Verdict.CONTRADICTED: "out of date: hashlib and zlib release the GIL, and threads "
            "ran them in parallel in {gains} of {n} series" + CARRIED,
            Verdict.NUANCED: "threads gained on C code that releases the GIL in {gains} of {n} "
            "series" + CARRIED,
        },
        gil=True,
    ),
    "threads_io": SpeedupClaim(
        IO_TASKS,
        ("threads",),
        "Threads suit I/O-bound work: while one waits, the others run.",
        True,
        {
            "missing": "no I/O cells (io_sleep, io_network, io_file) with threads",
            Verdict.SUPPORTED: "threads beat sequential in every I/O series" + CARRIED,
            Verdict.CONTRADICTED: "threads ruled a gain over sequential out on every I/O task"
            + EVERY_COUNT
            + BEST,
            Verdict.NUANCED: "threads beat sequential in {gains} of {n} I/O series"
            + CARRIED
            + "; the "
            "others are bound by something threads do not overlap (a disk's fsync, for one)",
        },
    ),
}
RESOURCE_CLAIMS = {
    "memory": (
        "Processes use more memory per worker than threads.",
        "memory (peak PSS of the process tree)",
    ),
    "startup": (
        "Creating processes costs more than creating threads.",
        "start-up time (until every worker is ready)",
    ),
}

# Each claim in a few words, for tables (the statement says it in full).
TITLES = {
    "gil_threads_cpu": "GIL threads give no speedup on pure-Python CPU work",
    "free_threading": "threads never run Python code in parallel",
    "subinterpreters": "only processes get around the GIL",
    "processes_cpu": "processes run CPU work in parallel",
    "gil_released_c_code": "threads do not speed up CPU work, C code included",
    "threads_io": "threads suit I/O-bound work",
    "memory": "processes use more memory than threads",
    "startup": "processes cost more to start than threads",
    "communication": "moving data to processes costs more",
    "shared_state": "shared state needs a lock",
    "fault_isolation": "a crashing process spares the others",
}
