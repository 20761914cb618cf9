"""The MicroPython runtime of ``blebridge run`` (see blebridge/script/apis.py for the contract).

Scripts see MicroPython's top-level modules (``bluetooth``, ``micropython``, ``machine``, the
``u*`` aliases, ...) from ``shims/``, MicroPython's ``time`` extensions, and MicroPython's
``bytes + str`` and ``bytearray`` item rules (dialect.py), and MicroPython's ``asyncio`` names
(asyncio_ext.py).
"""
from __future__ import annotations

import os
from typing import Any, Callable

#: Put first on sys.path by ``blebridge run --api micropython``.
SHIMS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims")


def compile_script(source: str, filename: str) -> tuple[Any, dict[str, Any]]:
    from .dialect import HELPERS, compile_script as compile_dialect
    return compile_dialect(source, filename), dict(HELPERS)


def install(on_board_lost: Callable[[BaseException], None]) -> None:
    from . import asyncio_ext
    from .ble import set_lost_handler
    from .runtime import ACTIVITY, install_time_extensions, script_waits
    set_lost_handler(on_board_lost)
    install_time_extensions()
    # The event loop idle is the script waiting, as time.sleep_ms is: IRQ handlers held back
    # after a BLE call (runtime.CallGate) run at once, and the loop resumes after the handlers
    # due have run.
    asyncio_ext.install(on_idle=script_waits, on_wake=ACTIVITY.settle)


def close_all() -> None:
    from . import close_all as close_boards
    close_boards()
