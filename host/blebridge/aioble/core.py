"""aioble's plumbing: errors, logging, waking coroutines from the board's thread, data checks."""
from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any, Callable, Optional

from ..micropython.uuid import UUID

#: 0 nothing, 1 errors, 2 warnings, 3 information (aioble's ``log_level``; read at each call).
#: ``aioble.log_level = 3`` (on the package) overrides it.
log_level = 1


def _level() -> int:
    pkg = sys.modules.get(__package__ or "")
    return pkg.__dict__.get("log_level", log_level) if pkg is not None else log_level


def log_error(*args: Any) -> None:
    if _level() > 0:
        print("[aioble] E:", *args)


def log_warn(*args: Any) -> None:
    if _level() > 1:
        print("[aioble] W:", *args)


def log_info(*args: Any) -> None:
    if _level() > 2:
        print("[aioble] I:", *args)


class GattError(Exception):
    """A remote GATT operation (read, write, indicate) ended with a non-zero ``_status``."""

    def __init__(self, status: int, operation: str = "") -> None:
        super().__init__(status, f"{operation + ': ' if operation else ''}GATT status 0x{status:02x}")
        self._status = status

    @property
    def status(self) -> int:
        return self._status

    def __str__(self) -> str:
        return self.args[1]


class DeviceDisconnectedError(Exception):
    """The connection ended while an operation was waiting on it."""


class L2CAPDisconnectedError(Exception):
    """An L2CAP channel operation met (or was interrupted by) a disconnected channel."""


class L2CAPConnectionError(Exception):
    """``l2cap_connect`` failed; the first argument is the status."""


def data_bytes(value: Any, what: str) -> bytes:
    """Bytes of a value a board accepts as a buffer (bytes-like, or str as UTF-8)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (int, float, bool)) or value is None:
        raise TypeError(f"{what} must be bytes-like or str, not {type(value).__name__}")
    try:
        with memoryview(value) as mv:
            return mv.tobytes()
    except TypeError:
        raise TypeError(f"{what} must be bytes-like or str, not {type(value).__name__}") from None


def as_uuid(value: Any, what: str = "uuid") -> UUID:
    """``bluetooth.UUID`` of ``value`` (a UUID of either kind; int and str are accepted as
    ``bluetooth.UUID`` takes them)."""
    if isinstance(value, UUID):
        return value
    if value is None or isinstance(value, (float, bool)):
        raise TypeError(f"{what} must be a bluetooth.UUID, not {type(value).__name__}")
    try:
        return UUID(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: {exc} ({value!r})") from None


def check_timeout(timeout_ms: Any, what: str = "timeout_ms") -> Optional[float]:
    """Seconds of a timeout given in ms (None: none); ValueError for a negative or non-number."""
    if timeout_ms is None:
        return None
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)):
        raise TypeError(f"{what} must be a number of milliseconds or None, not {type(timeout_ms).__name__}")
    if timeout_ms < 0:
        raise ValueError(f"{what} must not be negative ({timeout_ms})")
    return timeout_ms / 1000


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class Signal:
    """Wakes coroutines (on any event loop, any number of loops) when state they wait on has
    changed on another thread: the board's dispatcher thread calls :meth:`notify`, coroutines
    ``await signal.until(predicate)``. A waiter is registered before the predicate is checked
    again, so no change is missed; a loop is only woken (``call_soon_threadsafe``) when a
    coroutine on it waits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []

    def notify(self) -> None:
        with self._lock:
            if not self._waiters:
                return
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_wake, fut)
            except RuntimeError:   # that loop is closed: nobody is left to wake
                pass

    async def until(self, predicate: Callable[[], Any], timeout_s: Optional[float] = None,
                    check: Optional[Callable[[], None]] = None) -> Any:
        """The first true value of ``predicate()``; ``check()`` (if given) runs before each
        look and may raise (disconnected, board lost). TimeoutError after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if check is not None:
                check()
            fut = loop.create_future()
            entry = (loop, fut)
            with self._lock:
                self._waiters.append(entry)
            handle = None
            try:
                value = predicate()
                if value:
                    return value
                if check is not None:
                    check()
                if deadline is not None:
                    delay = deadline - loop.time()
                    if delay <= 0:
                        raise asyncio.TimeoutError()
                    handle = loop.call_later(delay, _wake, fut)
                await fut
            finally:
                if handle is not None:
                    handle.cancel()
                with self._lock:
                    try:
                        self._waiters.remove(entry)
                    except ValueError:
                        pass
            if deadline is not None and loop.time() >= deadline:
                value = predicate()
                if value:
                    return value
                if check is not None:
                    check()
                raise asyncio.TimeoutError()
