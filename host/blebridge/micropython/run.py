"""The MicroPython runtime of ``blebridge run`` (see blebridge/script/apis.py for the contract).

Scripts see MicroPython's top-level modules (``bluetooth``, ``micropython``, ``machine``, the
``u*`` aliases, ...) from ``shims/``, MicroPython's ``time`` extensions, and MicroPython's
``bytes + str`` and ``bytearray`` item rules (dialect.py), and MicroPython's ``asyncio`` names
(asyncio_ext.py).
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

#: On sys.path under ``blebridge run --api micropython``, after the user's directories.
SHIMS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims")

#: Shims of MicroPython's non-extensible built-in modules: a board imports them before looking
#: at its filesystem (py/builtinimport.c), so a user's ``micropython.py`` (a stub for desktop
#: CPython, say) never replaces them. The other built-ins (bluetooth, machine, time, ...) are
#: extensible there: a file of the same name wins, as a user's module wins over SHIMS_DIR here.
NON_EXTENSIBLE = ("micropython",)


class _BuiltinShimFinder:
    """Finds the NON_EXTENSIBLE modules in SHIMS_DIR before sys.path is searched."""

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> Any:
        if path is not None or fullname not in NON_EXTENSIBLE:
            return None
        from importlib.machinery import PathFinder
        return PathFinder.find_spec(fullname, [SHIMS_DIR], target)


#: Run by ``blebridge repl --api micropython`` in the prompt's namespace before the first prompt:
#: the board opened as a script on the board has it.
REPL_PRELUDE = "import bluetooth\nimport time\nfrom micropython import const\nble = bluetooth.BLE()\n"


def compile_script(source: str, filename: str) -> tuple[Any, dict[str, Any]]:
    from .dialect import HELPERS, compile_script as compile_dialect
    return compile_dialect(source, filename), dict(HELPERS)


def compile_interactive(source: str, filename: str, symbol: str) -> Any:
    """One complete statement typed at ``blebridge repl``, in the dialect (the names it needs
    are those compile_script gives)."""
    from .dialect import compile_script as compile_dialect
    return compile_dialect(source, filename, symbol)


def install(on_board_lost: Callable[[BaseException], None]) -> None:
    from . import asyncio_ext
    from .ble import set_lost_handler
    from .runtime import install_os_extensions, install_time_extensions, script_waits
    set_lost_handler(on_board_lost)
    install_time_extensions()
    install_os_extensions()
    # The event loop idle is the script waiting, as time.sleep_ms is: IRQ handlers held back
    # after a BLE call (runtime.CallGate) run at once. (It does not settle ACTIVITY as
    # sleep_ms does: a handler that woke a task waits for the loop to run it, asyncio_ext.handoff.)
    asyncio_ext.install(on_idle=script_waits)
    # MicroPython's language rules for the user's modules too (aioble's bytes + str).
    from .dialect import install_import_hook
    install_import_hook()
    if _BuiltinShimFinder not in sys.meta_path:
        sys.meta_path.insert(0, _BuiltinShimFinder)


def close_all() -> None:
    from . import close_all as close_boards
    close_boards()
