"""The board APIs ``blebridge run`` knows, and which one a script is written for.

Each API names the modules that give it away in a script's imports and, once it exists on the
host, the module of its runtime (``blebridge.<api>.run``), which provides:

    SHIMS_DIR                       directory put on sys.path after the user's (the script's
                                    directory, PYTHONPATH), before Python's (the board's
                                    top-level modules)
    compile_script(source, filename) -> (code, globals)
                                    the API's dialect: the code object to exec and the names it
                                    needs in the script's globals
    install(on_board_lost)          process-wide set-up before the script runs; ``on_board_lost``
                                    is called with the error when a board's link goes away
    close_all()                     close every board the script opened
    REPL_PRELUDE                    (optional) source ``blebridge repl`` runs before its first
                                    prompt: the API's modules imported, the board opened
    compile_interactive(source, filename, symbol)
                                    (optional) the dialect for one statement typed at the
                                    prompt (``symbol`` as for codeop); without it, CPython's

An API without a runtime yet is refused with one line and exit status 2 (``ApiUnavailable``).
"""
from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

from ..errors import BlebridgeError


@dataclass(frozen=True)
class Api:
    name: str                      #: the --api value
    title: str                     #: how messages name it
    modules: frozenset[str]        #: top-level imports that mark a script as this API's
    weak_modules: frozenset[str]   #: marks only when no other API's module is imported
    runtime: Optional[str]         #: module of its runtime; None: not available yet


#: In --api order. ``micropython`` (``const``) exists on CircuitPython too, so it marks a
#: MicroPython script only when nothing else does.
APIS = (
    Api("micropython", "MicroPython bluetooth",
        frozenset({"bluetooth", "ubluetooth", "aioble", "machine"}), frozenset({"micropython"}),
        "blebridge.micropython.run"),
    Api("circuitpython", "CircuitPython _bleio",
        frozenset({"_bleio", "adafruit_ble", "board"}), frozenset(), None),
    Api("zerynth", "Zerynth ble",
        frozenset({"wireless", "streams", "nordic", "espressif"}), frozenset(), None),
)
API_NAMES = tuple(api.name for api in APIS)
#: The API of a script that imports none of the modules above.
DEFAULT_API = "micropython"


class ApiError(BlebridgeError):
    """The script's API cannot be told (conflicting imports) or is not available."""


class ApiUnavailable(ApiError):
    """The API exists on boards but has no runtime in this blebridge version."""


class Marker(NamedTuple):
    module: str    #: top-level module name as imported
    line: int      #: line of the import statement


def api_named(name: str) -> Api:
    for api in APIS:
        if api.name == name:
            return api
    raise ApiError(f"unknown API {name!r}; choose one of {', '.join(API_NAMES)}")


def imported_modules(source: str, filename: str = "<string>") -> list[Marker]:
    """Top-level modules ``source`` imports anywhere (absolute imports only), in source order.

    The source is parsed, never run. Source that does not parse imports nothing here: the
    runtime reports the syntax error when it compiles the script."""
    try:
        tree = ast.parse(source, filename, "exec")
    except (SyntaxError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Marker(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(Marker(node.module.split(".")[0], node.lineno))
    return sorted(found, key=lambda m: m.line)


def _first(markers: list[Marker], modules: frozenset[str]) -> Optional[Marker]:
    return next((m for m in markers if m.module in modules), None)


def detect_api(source: str, filename: str = "<string>") -> tuple[Api, Optional[Marker]]:
    """The API ``source`` is written for, from its imports, and the import that tells it
    (None: no API module imported, so DEFAULT_API). Raises ApiError when the imports name
    more than one API."""
    markers = imported_modules(source, filename)
    strong = [(api, m) for api in APIS if (m := _first(markers, api.modules)) is not None]
    if len(strong) > 1:
        (a, ma), (b, mb) = strong[0], strong[1]
        raise ApiError(f"{_where(filename)} imports both {a.title} ({ma.module}, line {ma.line}) and "
                       f"{b.title} ({mb.module}, line {mb.line}); choose one with --api "
                       f"{'|'.join(API_NAMES)}")
    if strong:
        return strong[0]
    for api in APIS:
        m = _first(markers, api.weak_modules)
        if m is not None:
            return api, m
    return api_named(DEFAULT_API), None


def _where(filename: str) -> str:
    return "the script" if filename.startswith("<") else filename


def load_runtime(api: Api, why: Optional[Marker] = None, filename: str = "<string>") -> Any:
    """The runtime module of ``api``; ApiUnavailable when it has none yet (``why``: the
    import it was detected from, named in the message)."""
    if api.runtime is None:
        detected = f" ({_where(filename)} imports {why.module}, line {why.line})" if why else ""
        raise ApiUnavailable(f"the {api.title} API is not available yet in this blebridge "
                             f"version{detected}")
    return importlib.import_module(api.runtime)
