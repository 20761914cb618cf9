"""The parts of CircuitPython's runtime a board script leans on, for CPython, under
``blebridge run --api circuitpython`` (run.py):

- ``os.uname()`` names the board (from its handshake) as CircuitPython names its own;
- the board the script runs against: :func:`default_port`, its session (opened once, shared
  with ``_bleio.adapter``), the board-lost handler of the run, and :func:`close_all`.

``time`` needs nothing: CircuitPython's ``time.monotonic``, ``monotonic_ns``, ``sleep``,
``time``, ``localtime`` and ``struct_time`` are CPython's, and MicroPython's ``sleep_ms`` and
``ticks_*`` are absent there as here.
"""
from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable, NamedTuple, Optional

class uname_result(NamedTuple):  # noqa: N801 (CircuitPython's name)
    """``os.uname()``'s value, CircuitPython's fields."""
    sysname: str
    nodename: str
    release: str
    version: str
    machine: str


_lost_handler: Optional[Callable[[BaseException], None]] = None
_lock = threading.Lock()
_watched: set[int] = set()


def default_port() -> str:
    """The port of ``_bleio.adapter`` (its adapter module's default_port)."""
    from ._bleio.adapters import default_port as adapter_port
    return adapter_port()


def board_session() -> Any:
    """The session of the run's board (blebridge.ble.session), opened on first use; the same
    one ``_bleio.adapter`` uses."""
    from ..ble import session as ble_session
    session = ble_session.open_session(default_port())
    watch(session)
    return session


def uname() -> uname_result:
    """``os.uname()``: sysname and nodename the board's kind ("sim", "nrf52840", ...), release
    and version its firmware's, machine "blebridge <kind> board at <port>"."""
    info = board_session().board.info
    return uname_result(sysname=info.board, nodename=info.board, release=info.fw_version,
                        version=f"{info.fw_version} on {info.fw_build}",
                        machine=f"blebridge {info.board} board at {default_port()}")


def watch(session: Any) -> None:
    """The run's board-lost handler hears of ``session``'s board (idempotent)."""
    with _lock:
        if id(session) in _watched:
            return
        _watched.add(id(session))
    session.subscribe_lost(_on_lost)


def _on_lost(exc: BaseException) -> None:
    handler = _lost_handler
    if handler is not None:
        handler(exc)
    else:
        print(f"blebridge: board lost: {exc}", file=sys.stderr)


def set_lost_handler(fn: Optional[Callable[[BaseException], None]]) -> None:
    """``fn(exc)`` is called (on the board's event thread) when the link to a board the script
    uses is lost: the sessions open now, and the board of every Adapter made from now on
    (``_bleio.adapter`` opened on first use, ``adapter_for``)."""
    global _lost_handler
    _lost_handler = fn
    from ..ble import session as ble_session
    from ._bleio import adapters
    for session in ble_session.sessions():
        watch(session)
    adapters.observe_sessions(watch)


def install() -> None:
    """``os.uname`` becomes :func:`uname` (the process is the script's run)."""
    os.uname = uname  # type: ignore[assignment]


def close_all() -> None:
    """Close every board the script opened (_bleio's adapters, the sessions opened here)."""
    from ..ble import session as ble_session
    from ._bleio.adapters import close_all as close_adapters
    close_adapters()
    for session in ble_session.sessions():
        if session.owned:
            session.close()
