"""An example user task: any importable ``module:function`` can be a task.

The function receives the work item's payload (bytes) and the task's params (a dict from
the spec's ``params``) and returns a JSON-serialisable value. It runs in whichever thread,
process or event-loop executor the model uses, so it must be importable there too: the
spec's ``python_path`` puts this folder on the worker's ``sys.path``.
"""

from __future__ import annotations

import hashlib
from typing import Any


def digest_rounds(payload: bytes, params: dict[str, Any]) -> str:
    """Hash the payload ``rounds`` times with SHA-256 (C code that releases the GIL)."""
    digest = payload
    for _ in range(int(params.get("rounds", 10))):
        digest = hashlib.sha256(digest).digest() + payload
    return hashlib.sha256(digest).hexdigest()
