"""Threads or processes? Measure Python concurrency models instead of trusting folklore.

This module stays import-light (standard library only): the worker side lives in the same
package and must run under any interpreter a spec names. The notebook API below imports
pandas and the store only when it is called.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import pandas as pd

__version__ = "0.1.0"
__all__ = ["__version__", "load_summary", "load_trials"]


def load_trials(db: str | None = None, run: str | int | None = "latest") -> pd.DataFrame:
    """A run's measured trials (the ``trial_results`` view) as a DataFrame.

    ``db`` is a database URL (default: ``$PIPELINE_DB`` or ``data/results.db``); ``run``
    is a run id or ``"latest"``.
    """
    from . import results

    return results.load_trials(db, run)


def load_summary(db: str | None = None, run: str | int | None = "latest") -> pd.DataFrame:
    """A run's cell statistics (the ``cell_summary`` view) as a DataFrame."""
    from . import results

    return results.load_summary(db, run)
