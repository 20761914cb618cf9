"""The MicroPython runtime of ``blebridge run`` (see blebridge/script/apis.py for the contract).

Scripts see MicroPython's top-level modules (``bluetooth``, ``micropython``, ``machine``, the
``u*`` aliases, ...) from ``shims/``, MicroPython's ``time`` extensions, and MicroPython's
``bytes + str`` and ``bytearray`` item rules (dialect.py).
"""
from __future__ import annotations

import os
from typing import Any, Callable

#: Put first on sys.path by ``blebridge run --api micropython``.
SHIMS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims")


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
    from .ble import set_lost_handler
    from .runtime import install_time_extensions
    set_lost_handler(on_board_lost)
    install_time_extensions()


def close_all() -> None:
    from . import close_all as close_boards
    close_boards()
