"""The worker side: runs one trial in a fresh process. Standard library only (CPython >= 3.9).

The orchestrator starts ``python -c BOOTSTRAP ROOT REQUEST RESULT`` with the cell's
interpreter; :func:`pipeline.worker.__main__.main` reads the request JSON, runs the trial
and writes the result JSON.
"""

# The version of the result file's layout, written by the worker and checked by the
# orchestrator (pipeline.execution.runner): a worker of another version is an error.
PROTOCOL = 1
