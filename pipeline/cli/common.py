"""What every command shares: the typer app, its common options, and the one place a
known error becomes a line on stderr and exit code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import typer

from .. import __version__, terminal
from ..errors import PipelineError

cli = typer.Typer(
    help="Threads or processes? Run an experiment matrix, store every trial in SQL, "
    "and publish an HTML report with the answer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
P = ParamSpec("P")
R = TypeVar("R")
out, err = terminal.out, terminal.err

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy database URL [default: $PIPELINE_DB or sqlite:///data/results.db]",
        show_default=False,
    ),
]
FormatOption = Annotated[terminal.Format, typer.Option("--format", "-f", help="Output format.")]
RunArgument = Annotated[str, typer.Argument(metavar="[RUN]", help="Run id, or 'latest'.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def errors_exit_2(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the library's known errors (bad spec, SQL, run id, URL...) into one line on
    stderr and exit code 2: the one place a command's PipelineError becomes a message."""

    @functools.wraps(command)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except PipelineError as error:
            raise fail(str(error)) from None

    return guarded


def _version(value: bool) -> None:
    if value:
        out.print(f"pipeline {__version__}")
        raise typer.Exit()


@cli.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Threads or processes? Measure it."""
