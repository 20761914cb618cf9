"""The parts of the MicroPython runtime a board script leans on, for CPython.

- ``time.sleep_ms/sleep_us/ticks_ms/ticks_us/ticks_cpu/ticks_diff/ticks_add`` (added to the
  real ``time`` module by :func:`install_time_extensions`);
- ``micropython.schedule`` and ``micropython.const`` (see blebridge/micropython/shims/micropython.py);
- ``machine.idle``;
- ``os.ilistdir`` (added to the real ``os`` module by :func:`install_os_extensions`).

Concurrency model. On a board, BLE IRQ handlers and scheduled functions run one at a time,
between the bytecodes of the main script. Here they run on other threads (each board's event
dispatcher, and one scheduler thread), so the main script keeps running while they do, but
they never run at the same time as each other: all of them hold :data:`SCHED_LOCK`. A handler
may call any ``BLE`` method (the board answers on its own reader thread).

A script's waits (``sleep_ms``, ``sleep_us``, ``machine.idle``) end only once the handlers and
scheduled functions already due have run (:data:`ACTIVITY`): on a board, the handlers for all
the stack reported at once (a read's result and its done) run before the script's next
bytecode, so a script that polls a flag set by the first one never runs before the second.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback
import weakref
from typing import Any, Callable

from . import asyncio_ext

#: MicroPython's ticks wrap at 2**30 (MICROPY_PY_TIME_TICKS_PERIOD): values stay small ints.
TICKS_PERIOD = 1 << 30
_TICKS_MAX = TICKS_PERIOD - 1
_TICKS_HALFPERIOD = TICKS_PERIOD // 2

#: Pending micropython.schedule() calls allowed at once (MICROPY_SCHEDULER_DEPTH on boards).
SCHEDULER_DEPTH = 8

#: machine.idle() waits this long (s): it stands for "wait for the next interrupt", and events
#: arrive on other threads, so a short sleep lets them run without spinning a core.
IDLE_S = 0.001

#: Held while an IRQ handler or a scheduled function runs (re-entrant: a handler may
#: trigger another board's handler synchronously through a nested call chain).
SCHED_LOCK = threading.RLock()

_T0 = time.monotonic_ns()

#: After a BLE call returns, IRQ handlers wait at most this long (s) for the calling thread to
#: reach a wait (sleep_ms, sleep_us, machine.idle, an idle asyncio loop) before they run anyway.
CALL_GRACE_S = 0.05

#: An IRQ handler or scheduled function that woke an asyncio task (ThreadSafeFlag.set) waits at
#: most this long (s) for the task's loop to run it before the next handler runs
#: (asyncio_ext.handoff): a loop that never idles does not stop the handlers.
HANDOFF_LIMIT_S = 0.25


_HANDLER_TLS = threading.local()


def in_handler() -> bool:
    """True on a thread that is running an IRQ handler or a scheduled function."""
    return getattr(_HANDLER_TLS, "handler", False)


def set_in_handler(value: bool) -> None:
    _HANDLER_TLS.handler = value


class CallGate:
    """Keeps IRQ handlers from running in the middle of the script's own BLE calls.

    On a board, the handler for an event a call caused (a disconnect, a write done) runs after
    the call has returned and the script has moved on: the call returns first, the radio is
    slower. Here the simulated link has no latency and the event is delivered on another
    thread, so without this gate a handler's print could come before the print of the call's
    result. While a script thread is inside a call to a board, and until it next waits (or
    CALL_GRACE_S after the call), that board's handlers are held back. There is one gate per
    board, so several boards in one process do not hold each other up. Calls made from
    inside a handler do not close a gate.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holder: int | None = None
        self._depth = 0
        self._deadline = 0.0
        _GATES.add(self)

    def call_started(self) -> None:
        if in_handler():
            return
        with self._cond:
            self._depth += 1
            self._holder = threading.get_ident()

    def call_finished(self) -> None:
        if in_handler():
            return
        with self._cond:
            self._depth -= 1
            self._deadline = time.monotonic() + CALL_GRACE_S
            self._cond.notify_all()

    def script_waits(self) -> None:
        if self._holder is None:
            return
        with self._cond:
            if self._holder == threading.get_ident() and self._depth == 0:
                self._holder = None
                self._cond.notify_all()

    def wait_for_turn(self) -> None:
        me = threading.get_ident()
        with self._cond:
            while self._holder is not None and self._holder != me:
                if self._depth > 0:
                    self._cond.wait(0.1)
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    self._holder = None
                    break
                self._cond.wait(remaining)


_GATES: "weakref.WeakSet[CallGate]" = weakref.WeakSet()

#: A script's wait ends after the handlers due have run, or after this long (s) whatever they
#: do: a handler that never returns (or an endless event flood) does not stop the script.
SETTLE_LIMIT_S = 0.1


class Activity:
    """IRQ deliveries and scheduled calls that are due or running, by source.

    A source (a board's event delivery, the scheduler) is busy while it has work that has
    arrived and not finished; :meth:`settle` waits until no source is. Waiting never holds
    :data:`SCHED_LOCK` or a :class:`CallGate`, and is bounded, so it cannot deadlock with a
    handler, whatever that handler calls.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy: dict[object, int] = {}   # source -> units of work due (> 0)

    def set_busy(self, source: object, busy: bool) -> None:
        """A source with one stream of work (a board's dispatcher) says whether it has any."""
        with self._cond:
            if busy:
                self._busy[source] = 1
            elif self._busy.pop(source, None) is not None and not self._busy:
                self._cond.notify_all()

    def add(self, source: object, delta: int) -> None:
        """A source with countable work (scheduled calls) adds or removes units."""
        with self._cond:
            n = self._busy.get(source, 0) + delta
            if n > 0:
                self._busy[source] = n
            else:
                self._busy.pop(source, None)
                if not self._busy:
                    self._cond.notify_all()

    def busy(self) -> bool:
        with self._cond:
            return bool(self._busy)

    def settle(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout`` s, default :data:`SETTLE_LIMIT_S`) until no source is
        busy; True if none is.

        Handlers and scheduled functions do not wait (they are the work being waited for).
        """
        if in_handler():
            return not self.busy()
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy,
                                       SETTLE_LIMIT_S if timeout is None else timeout)


#: The one Activity every board and the scheduler report to (one script, one "CPU").
ACTIVITY = Activity()


def script_waits() -> None:
    """The calling thread waits (sleep_ms, idle, its asyncio loop idles): open every gate it
    holds."""
    for gate in list(_GATES):
        gate.script_waits()


def handler_turn() -> Any:
    """Context for running one IRQ handler or scheduled function: a task it wakes runs to its
    next wait before the next one runs (asyncio_ext.handoff, at most HANDOFF_LIMIT_S)."""
    return asyncio_ext.handoff(HANDOFF_LIMIT_S)


def _thread_waits() -> None:
    script_waits()
    asyncio_ext.note_idle()      # time.sleep_ms inside a coroutine: its loop runs nothing


def ticks_ms() -> int:
    return ((time.monotonic_ns() - _T0) // 1_000_000) & _TICKS_MAX


def ticks_us() -> int:
    return ((time.monotonic_ns() - _T0) // 1_000) & _TICKS_MAX


def ticks_cpu() -> int:
    return ticks_us()


def ticks_add(ticks: int, delta: int) -> int:
    return (ticks + delta) & _TICKS_MAX


def ticks_diff(ticks1: int, ticks2: int) -> int:
    """Signed difference ticks1 - ticks2 on the wrapping ticks scale (as MicroPython)."""
    return ((ticks1 - ticks2 + _TICKS_HALFPERIOD) & _TICKS_MAX) - _TICKS_HALFPERIOD


def sleep_ms(ms: float) -> None:
    _thread_waits()
    if ms > 0:
        time.sleep(ms / 1000)
    ACTIVITY.settle()


def sleep_us(us: float) -> None:
    _thread_waits()
    if us > 0:
        time.sleep(us / 1_000_000)
    ACTIVITY.settle()


def idle() -> None:
    _thread_waits()
    time.sleep(IDLE_S)
    ACTIVITY.settle()


def install_time_extensions() -> None:
    """Add MicroPython's time functions to the real ``time`` module (idempotent)."""
    for name, fn in (("sleep_ms", sleep_ms), ("sleep_us", sleep_us), ("ticks_ms", ticks_ms),
                     ("ticks_us", ticks_us), ("ticks_cpu", ticks_cpu), ("ticks_add", ticks_add),
                     ("ticks_diff", ticks_diff)):
        if not hasattr(time, name):
            setattr(time, name, fn)


#: os.ilistdir's entry types (MP_S_IFDIR, MP_S_IFREG in extmod/vfs.h).
S_IFDIR = 0x4000
S_IFREG = 0x8000


def ilistdir(path: Any = ".") -> Any:
    """``os.ilistdir``: an iterator of ``(name, type, inode, size)`` per entry, as a board's
    littlefs and FAT filesystems give them (inode 0; size 0 for a directory). Names are bytes
    when ``path`` is. A missing directory is OSError at the call, as on a board."""
    entries = []
    with os.scandir(path) as it:
        for entry in it:
            is_dir = entry.is_dir()
            entries.append((entry.name, S_IFDIR if is_dir else S_IFREG, 0,
                            0 if is_dir else entry.stat().st_size))
    return iter(entries)


def install_os_extensions() -> None:
    """Add MicroPython's os functions to the real ``os`` module (idempotent)."""
    if not hasattr(os, "ilistdir"):
        os.ilistdir = ilistdir  # type: ignore[attr-defined]


def report_exception(header: str) -> None:
    """Print the current exception as MicroPython prints an unhandled one in a callback."""
    print(header, file=sys.stderr)
    traceback.print_exc(file=sys.stderr)
    sys.stderr.flush()


class _Scheduler:
    """micropython.schedule(): run fn(arg) "soon", one at a time, in order."""

    def __init__(self) -> None:
        self._q: "queue.Queue[tuple[Callable[[Any], Any], Any]]" = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def schedule(self, fn: Callable[[Any], Any], arg: Any) -> None:
        if not callable(fn):
            raise TypeError("'%s' object isn't callable" % type(fn).__name__)
        with self._lock:
            if self._pending >= SCHEDULER_DEPTH:
                raise RuntimeError("schedule queue full")
            self._pending += 1
            ACTIVITY.add(self, 1)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="micropython.schedule",
                                                daemon=True)
                self._thread.start()
        self._q.put((fn, arg))

    def _run(self) -> None:
        while True:
            fn, arg = self._q.get()
            with self._lock:
                self._pending -= 1
            with handler_turn(), SCHED_LOCK:
                try:
                    set_in_handler(True)
                    fn(arg)
                except Exception:
                    report_exception("Unhandled exception in scheduled function")
                finally:
                    set_in_handler(False)
            ACTIVITY.add(self, -1)


_scheduler = _Scheduler()


def schedule(fn: Callable[[Any], Any], arg: Any) -> None:
    """Queue ``fn(arg)``; RuntimeError("schedule queue full") past SCHEDULER_DEPTH pending."""
    _scheduler.schedule(fn, arg)
