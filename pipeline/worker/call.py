"""The ``call`` task: a user's own function over the user's own items (``pipeline advise``).

Standard library only, Python 3.9 syntax. ``function`` is ``module:function`` with its
natural signature, ``function(item)`` as ``executor.map`` calls it; ``inputs`` is
``module:factory``, a callable that returns the list of items (empty: ``function`` takes
no argument and is called ``count`` times). A work item of a trial is a chunk of
``chunksize`` items (as ``executor.map(..., chunksize=)`` sends them): the function runs
on each item of the chunk where the model puts the chunk.

Each item's result is kept, untimed, by the trial's process and turned into a digest
when the pool has stopped, so that the results of every model can be compared item by
item (a function whose results differ under threads is probably not thread-safe). The
task's facts: the pickled sizes of an item and of a result, and, on a free-threaded
build, whether importing the user's modules turned the GIL back on and which modules did.
"""

from __future__ import annotations

import importlib
import sys

from .api import Param, Session, Setting, Task

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

    from .api import Facts, Params

_resolved: Dict[str, Any] = {}


class CallError(Exception):
    """The user's function or inputs cannot be used: what is wrong, in one line."""


def resolve(name: str) -> Any:
    """Import ``module:attribute`` (cached per process)."""
    if name not in _resolved:
        module_name, _, attribute = name.partition(":")
        if not module_name or not attribute:
            raise CallError(f"{name!r} is not module:function")
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # whatever importing the user's module raises
            raise CallError(
                f"cannot import {module_name}: {type(error).__name__}: {error}"
            ) from None
        try:
            found = getattr(module, attribute)
        except AttributeError:
            raise CallError(f"module {module_name} has no {attribute!r}") from None
        if not callable(found):
            raise CallError(f"{name} is not callable (it is a {type(found).__name__})")
        _resolved[name] = found
    return _resolved[name]


def load_items(inputs: str, count: int) -> List[Any]:
    """The items the function is called with: what the inputs factory returns, as a list;
    without a factory, ``count`` calls without arguments (items None)."""
    if not inputs:
        return [None] * count
    factory = resolve(inputs)
    try:
        items = list(factory())
    except Exception as error:  # whatever the user's factory raises
        raise CallError(
            f"the inputs factory {inputs} failed: {type(error).__name__}: {error}"
        ) from None
    if not items:
        raise CallError(f"the inputs factory {inputs} returned no items")
    return items


def chunks(items: List[Any], chunksize: int) -> List[List[Any]]:
    """The items in work items of ``chunksize`` (the last one shorter)."""
    return [items[start : start + chunksize] for start in range(0, len(items), chunksize)]


def _bound(params: Params) -> Callable[[Any], Any]:
    """The function as called on one item (without an inputs factory, with no argument)."""
    function = resolve(params["function"])
    if params["inputs"]:
        return function  # type: ignore[no-any-return]
    return lambda _item: function()


def is_coroutine_function(params: Params) -> bool:
    import inspect  # here, not at the top: every trial imports this module

    return inspect.iscoroutinefunction(resolve(params["function"]))


def call(chunk: List[Any], params: Params) -> List[Any]:
    """A work item: the function over each item of the chunk (a coroutine function runs
    on an event loop of its own, one item after another). ``_coroutine``: whether it is
    one, found by the session before timing starts (inspect takes milliseconds to import)."""
    function = _bound(params)
    if params.get("_coroutine", False):
        import asyncio

        return [asyncio.run(function(item)) for item in chunk]
    return [function(item) for item in chunk]


async def call_async(chunk: List[Any], params: Params) -> List[Any]:
    """A work item on the running event loop: each item awaited in turn."""
    function = _bound(params)
    if not params.get("_coroutine", True):
        return [function(item) for item in chunk]
    return [await function(item) for item in chunk]


def digest(value: Any) -> str:
    """A short digest of a result, to compare results across models: of its pickle, or of
    its repr when it cannot be pickled."""
    import hashlib
    import pickle

    try:
        data = pickle.dumps(_canonical(value), protocol=4)
    except Exception:  # not picklable: compared by its text
        data = ("repr:" + repr(value)).encode("utf-8", "replace")
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _canonical(value: Any) -> Any:
    """``value`` with its sets and frozensets (and those inside lists, tuples and dicts)
    as sorted lists: a set of strings pickles in an order that follows the process's hash
    seed, which every trial draws anew."""
    if isinstance(value, (set, frozenset)):
        return ["set", sorted((_canonical(v) for v in value), key=repr)]
    if isinstance(value, (list, tuple)):
        return type(value)(_canonical(v) for v in value) if type(value) in (list, tuple) else value
    if type(value) is dict:
        return {k: _canonical(v) for k, v in value.items()}
    return value


def pickled_size(value: Any) -> Optional[int]:
    """Bytes a value takes as a pickle (what a process pool moves), or None when it cannot
    be pickled."""
    import pickle

    try:
        return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # not picklable
        return None


def import_watching_the_gil(names: Tuple[str, ...]) -> Dict[str, Any]:
    """Import ``names`` (module:attribute) and say whether that turned the GIL on: on a
    free-threaded build, an extension module that does not declare it can run without the
    GIL turns it back on as it loads, with a RuntimeWarning that names the module."""
    import warnings

    check = getattr(sys, "_is_gil_enabled", None)
    before = check() if check is not None else True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        for name in names:
            if name:
                resolve(name)
    after = check() if check is not None else True
    return {
        "gil_before": before,
        "gil_after": after,
        "gil_modules": [_module_named(str(w.message)) for w in caught if "GIL" in str(w.message)],
    }


def _module_named(message: str) -> str:
    """The module a GIL warning names ("... to load module 'x', which ...")."""
    start = message.find("module '")
    if start < 0:
        return message
    start += len("module '")
    return message[start : message.find("'", start)]


class CallSession(Session):
    """The user's items, in chunks; each chunk's results kept (untimed) and digested when
    the pool has stopped; the user's modules imported in every worker before timing."""

    def __init__(self, params: Params, payload: bytes, setting: Setting) -> None:
        super().__init__(params, payload, setting)
        self.gil = import_watching_the_gil((params["function"], params["inputs"]))
        self.params = {**params, "_coroutine": is_coroutine_function(params)}
        self.chunks = chunks(load_items(params["inputs"], params["count"]), params["chunksize"])
        if len(self.chunks) != setting.items:
            raise CallError(
                f"{len(self.chunks)} work items of {params['chunksize']} item(s), but the trial "
                f"runs {setting.items}: items must be the number of chunks"
            )
        self.results: Dict[int, Any] = {}

    def imports(self) -> Tuple[str, ...]:
        named = (self.params["function"], self.params["inputs"])
        return tuple(name.partition(":")[0] for name in named if name)

    def item(self, index: int) -> Tuple[Any, Params]:
        return self.chunks[index % len(self.chunks)], self.params

    def finish(self, index: int, value: Any) -> Any:
        if index < len(self.chunks):
            self.results[index] = value
        return None

    def close(self, items: List[Dict[str, Any]]) -> Facts:
        for item in items:
            found = self.results.get(item["index"])
            if found is not None and "error" not in item:
                item["value"] = [digest(result) for result in found]
        flat = [item for chunk in self.chunks for item in chunk]
        results = [result for chunk in self.results.values() for result in (chunk or [])]
        facts: Facts = {
            "item_pickle_bytes": _median_size(flat),
            "result_pickle_bytes": _median_size(results),
            "items_per_chunk": float(self.params["chunksize"]),
            "pickle_round_trip_s": _round_trip_s(flat[:1] + results[:1]) if results else None,
            "gil_enabled_after_import": float(bool(self.gil["gil_after"])),
        }
        if not self.gil["gil_before"] and self.gil["gil_after"]:
            for module in self.gil["gil_modules"]:
                facts["gil_enabled_by:" + module] = 1.0
        return facts


def _median_size(values: List[Any]) -> Optional[float]:
    """The median pickled size of up to 16 of ``values`` (None: one cannot be pickled)."""
    if not values:
        return None
    step = max(1, len(values) // 16)
    sizes = [pickled_size(value) for value in values[::step][:16]]
    if any(size is None for size in sizes):
        return None
    known = sorted(size for size in sizes if size is not None)
    return float(known[len(known) // 2])


def profile(params: Params, seconds: float = 1.0) -> Dict[str, Any]:
    """What ``pipeline advise`` needs to know before it plans a study, found by calling
    the function here, one item after another, for about ``seconds`` (at least one item):
    its time and CPU share per item, whether it is a coroutine function, the pickled sizes
    of an item and a result (None, with the reason, when one cannot be pickled: processes
    cannot run it), and the GIL as the user's modules load. Raises CallError on what makes
    the function unusable."""
    import time

    gil = import_watching_the_gil((params["function"], params["inputs"]))
    items = load_items(params["inputs"], params["count"])
    coroutine = is_coroutine_function(params)
    params = {**params, "_coroutine": coroutine}
    walls: List[float] = []
    cpus: List[float] = []
    results: List[Any] = []
    spent_s = 0.0
    for index, item in enumerate(items):
        started_s, cpu_started_s = time.perf_counter(), time.thread_time()
        try:
            (result,) = call([item], params)
        except Exception as error:  # the user's function failing on the user's item
            raise CallError(
                f"{params['function']} raised {type(error).__name__} on item {index}: {error}"
            ) from None
        walls.append(time.perf_counter() - started_s)
        cpus.append(time.thread_time() - cpu_started_s)
        results.append(result)
        spent_s += walls[-1]
        if spent_s >= seconds:
            break
    return {
        "items": len(items),
        "sampled": len(walls),
        "coroutine": coroutine,
        "item_s": sorted(walls)[len(walls) // 2],
        "cpu_share": sum(cpus) / sum(walls) if sum(walls) > 0 else 1.0,
        "item_bytes": _median_size(items) if params["inputs"] else 0.0,
        "result_bytes": _median_size(results),
        "not_picklable": _not_picklable(items if params["inputs"] else [], results),
        "pickle_s": _round_trip_s([items[0] if params["inputs"] else None, results[0]]),
        **gil,
    }


def _round_trip_s(values: List[Any]) -> Optional[float]:
    """Seconds to pickle and unpickle ``values`` (an item and its result: what a process
    pool does to each, at least), the fastest of three; None when one cannot be pickled."""
    import pickle
    import time

    times = []
    for _ in range(3):
        started_s = time.perf_counter()
        try:
            for value in values:
                pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:  # not picklable
            return None
        times.append(time.perf_counter() - started_s)
    return min(times)


def _not_picklable(items: List[Any], results: List[Any]) -> str:
    """Why a process pool cannot run the function, or '': an item or a result that
    cannot be pickled."""
    import pickle

    for what, values in (("item", items), ("result", results)):
        for index, value in enumerate(values[:16]):
            try:
                pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as error:  # whatever pickling raises
                return f"{what} {index} cannot be pickled ({type(error).__name__}: {error})"
    return ""


TASK = Task(
    "call",
    "a user's function over the user's items (pipeline advise)",
    call,
    call_async,
    params={
        "function": Param("", doc="module:function, called as function(item)"),
        "inputs": Param("", doc="module:factory returning the list of items ('' : none)"),
        "count": Param(32, 1, "calls without arguments when there is no inputs factory"),
        # the spec's items are the user's items; a trial runs ceil(items / chunksize) work items
        "chunksize": Param(1, 1, "items per work item, as executor.map's chunksize"),
    },
    session=CallSession,
    work_items=lambda params, items: -(-items // params["chunksize"]),
)
