"""Domain errors. The CLI turns each into a one-line message and exit code 2."""


class PipelineError(Exception):
    """Base class: a problem the user can fix; the message says what and where."""


class SpecError(PipelineError):
    """The experiment spec is invalid (file, line and field are in the message)."""


class UnknownRun(PipelineError):
    """No run with that id (or no runs at all) in the database."""


class QueryError(PipelineError):
    """The SQL is invalid or would write to the database."""


class DatabaseError(PipelineError):
    """The database URL cannot be opened."""


class ResumeError(PipelineError):
    """A run cannot be resumed: finished, still running, or its spec changed."""


class AdviceError(PipelineError):
    """``pipeline advise`` cannot measure the function: not importable, not callable, its
    inputs factory fails or returns nothing, or it fails on an item."""


class InterchangeError(PipelineError):
    """A pyperf file to import cannot be read or is not of its format, or a run has
    nothing to export as one."""
