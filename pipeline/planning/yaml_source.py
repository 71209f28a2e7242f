"""Reading a YAML document so that errors can point into it: safe loading, a map from every
key path to its line, and one line for the first validation error (file, line, field)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import SpecError

Lines = dict[tuple[Any, ...], int]


def read_yaml(text: str, source: str) -> tuple[Any, Lines]:
    """The document (``yaml.safe_load``) and the line of each key path; a syntax error is a
    SpecError naming the file and line."""
    try:
        data = yaml.safe_load(text)
        document = yaml.compose(text, Loader=yaml.SafeLoader)
        lines = _line_map(document)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise SpecError(f"{where}: YAML syntax error: {error.problem}") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{source}: YAML error: {error}") from None
    duplicate = _first_duplicate(document, ())
    if duplicate is not None:
        path, line, first_line = duplicate
        raise SpecError(
            f"{source}:{line}: {_field_path(path)}: duplicate key (first on line {first_line}; "
            "YAML would keep only the last)"
        )
    return data, lines


def _first_duplicate(
    node: yaml.Node | None, path: tuple[Any, ...]
) -> tuple[tuple[Any, ...], int, int] | None:
    """The first key given twice in one mapping, at any depth: (its path, its line, the
    line of its first occurrence), or None."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in seen:
                return (*path, key.value), line, seen[key.value]
            seen[key.value] = line
            found = _first_duplicate(value, (*path, key.value))
            if found is not None:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            found = _first_duplicate(value, (*path, index))
            if found is not None:
                return found
    return None


def describe_error(
    error: ValidationError, source: str, lines: Lines, skip: Iterable[str] = ()
) -> str:
    """One line for the first validation error: file, line, field path, message. ``skip``:
    names in error locations that are not keys of the document (tagged union members)."""
    skip = set(skip)
    first = error.errors()[0]
    location = tuple(
        part for part in (first.get("ctx") or {}).get("at") or first["loc"] if part not in skip
    )
    field = _field_path(location)
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    line = next(
        (lines[location[:n]] for n in range(len(location), -1, -1) if location[:n] in lines), None
    )
    more = error.error_count() - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    where = f"{source}:{line}" if line else source
    return f"{where}: {field or 'spec'}: {message}{suffix}"


def _field_path(location: tuple[Any, ...]) -> str:
    """``('matrix', 'workers', 1)`` -> ``matrix.workers[1]``; a key with a line break or
    another unprintable character is quoted (``repetitions.'\\n'``), so the message
    stays one line."""
    text = ""
    for part in location:
        name = str(part) if str(part).isprintable() else repr(str(part))
        text += f"[{part}]" if isinstance(part, int) else (f".{name}" if text else name)
    return text


def _line_map(node: yaml.Node | None) -> Lines:
    """Map each key path in the YAML document to its 1-based line."""
    return dict(_walk(node, ())) if node is not None else {}


def _walk(node: yaml.Node, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], int]]:
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            yield from _walk(value, child)
            yield child, key.start_mark.line + 1  # the key's line wins over its value's
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            yield from _walk(value, (*path, index))
