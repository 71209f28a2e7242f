"""The worker side: runs one trial in a process of its own. Standard library only (CPython
>= 3.9).

The orchestrator starts ``python -c BOOTSTRAP ROOT REQUEST RESULT`` with the cell's
interpreter; :func:`pipeline.worker.__main__.main` reads the request JSON, runs the trial
and writes the result JSON. With ``trial_process: warm`` it starts ``python -c SERVE
ROOT`` instead, a fork server (:func:`pipeline.worker.__main__.serve`) whose forked child
runs ``main`` the same way, its memory first made a fresh worker's (``memory.py``).
"""

# The version of the result file's layout, written by the worker and checked by the
# orchestrator (pipeline.execution.runner): a worker of another version is an error.
PROTOCOL = 1
