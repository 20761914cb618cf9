"""MicroPython's ``asyncio`` names for CPython's asyncio.

Usable from any CPython asyncio program (``from blebridge.micropython.asyncio_ext import
ThreadSafeFlag``); ``blebridge run --api micropython`` also adds them to the real ``asyncio``
module with :func:`install`, so a board script's ``import asyncio`` (or ``uasyncio``) sees:

- ``ThreadSafeFlag``: ``set()`` from any thread (an IRQ handler) wakes the task in ``wait()``;
  ``wait()`` clears the flag as it returns. A flag belongs to no loop: it binds to the running
  loop only while a task waits on it, so one made outside a loop (aioble makes them at import
  and in constructors) works in every ``asyncio.run`` after it;
- ``sleep_ms(ms)`` and ``wait_for_ms(aw, timeout_ms)``;
- ``create_task(coro)`` before any loop runs (a module-level ``aioble.Characteristic(...,
  capture=True)`` does it): on a board the task waits in the scheduler's queue; here it is
  queued and started when the next loop starts (the loops of :class:`EventLoopPolicy`), and the
  call returns a :class:`PendingTask` standing for it;
- with :func:`install`'s ``on_idle``/``on_wake``: a hook around every wait of the loop for I/O
  or a timer (the loop has nothing to run), which ``blebridge run`` uses to count the loop's
  idle as the script waiting (runtime.script_waits, as ``time.sleep_ms``);
- :func:`handoff`: an IRQ handler (another thread) that wakes a task with ``set()`` lets that
  task run up to its next wait before the handler's thread goes on to the next IRQ. On a board
  the handlers and the main code share one CPU: an IRQ that arrives after another (a radio's
  connection event later) finds the task the first one woke already run, so two writes to one
  characteristic are two ``written()``. The simulated link is faster than a radio, and a loaded
  PC may run the handlers' thread first: without the hand-off both IRQs could set the flag
  before the task ran, and one would be lost.

MicroPython allows one task to wait on a ThreadSafeFlag; here several may, and one ``set()``
lets one of them through (the first to run clears the flag; the others wait again).
"""
from __future__ import annotations

import asyncio
import contextlib
import selectors
import threading
import time
import warnings
from typing import Any, Awaitable, Callable, Coroutine, Iterator, Optional

_IdleHook = Optional[Callable[[], Any]]


class ThreadSafeFlag:
    """MicroPython's ``asyncio.ThreadSafeFlag``: an event one task waits for, set from anywhere."""

    __slots__ = ("_lock", "_state", "_waiters")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = False
        # Futures of the tasks in wait(), each on the loop it was made on.
        self._waiters: list[asyncio.Future[None]] = []

    def set(self) -> None:
        """Set the flag and wake the waiting task; safe from any thread (and from an IRQ
        handler while the loop runs or not)."""
        with self._lock:
            self._state = True
            waiters = self._waiters
            self._waiters = []
        handoffs = getattr(_tls, "handoffs", None)
        for fut in waiters:
            loop = fut.get_loop()
            # The loop's idle count before the wake is queued: the task has run once the loop
            # has been idle again after it (see handoff()).
            idle_count = loop.idle_count if isinstance(loop, EventLoop) else None
            try:
                loop.call_soon_threadsafe(_wake, fut)
            except RuntimeError:     # that loop is closed: its task is gone with it
                continue
            if handoffs is not None and idle_count is not None and not _runs_here(loop):
                handoffs.append((loop, idle_count))

    def clear(self) -> None:
        with self._lock:
            self._state = False

    def is_set(self) -> bool:
        """Not in MicroPython; for tests and debugging."""
        return self._state

    async def wait(self) -> None:
        """Return once the flag is set (at once if it is), clearing it."""
        while True:
            with self._lock:
                if self._state:
                    self._state = False
                    return
                fut = asyncio.get_running_loop().create_future()
                self._waiters.append(fut)
            try:
                await fut
            finally:
                with self._lock:
                    if fut in self._waiters:
                        self._waiters.remove(fut)


def _wake(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


def _runs_here(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


_tls = threading.local()


@contextlib.contextmanager
def handoff(limit_s: float) -> Iterator[None]:
    """Run an IRQ handler (or a scheduled function) inside this: on leaving, wait until every
    EventLoop whose task the handler woke with ThreadSafeFlag.set() has run it and is idle
    again, at most ``limit_s`` seconds in all (a loop that never idles does not stop the
    handlers). Nested uses wait once, at the outermost."""
    if getattr(_tls, "handoffs", None) is not None:
        yield
        return
    _tls.handoffs = []
    try:
        yield
    finally:
        pending, _tls.handoffs = _tls.handoffs, None
        deadline = time.monotonic() + limit_s
        for loop, idle_count in pending:
            loop.wait_idle_after(idle_count, deadline)


def note_idle() -> None:
    """The calling thread waits outside its loop's selector (``time.sleep_ms`` inside a
    coroutine): for handoff(), its running EventLoop is idle."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if isinstance(loop, EventLoop):
        loop.note_idle()


def sleep_ms(ms: float) -> Awaitable[None]:
    """``asyncio.sleep_ms``: sleep ``ms`` milliseconds (0 or less: yield once)."""
    return asyncio.sleep(max(0, ms) / 1000)


def wait_for_ms(aw: Awaitable[Any], timeout_ms: Optional[float]) -> Awaitable[Any]:
    """``asyncio.wait_for_ms``: ``wait_for`` with the timeout in milliseconds (None: none)."""
    return asyncio.wait_for(aw, None if timeout_ms is None else timeout_ms / 1000)


class PendingTask:
    """What ``create_task`` returns when no loop runs: the task-to-be, started by the next
    loop that starts. Until then ``cancel()`` drops it (the coroutine is closed, never run);
    once started every call goes to the real :class:`asyncio.Task`."""

    def __init__(self, coro: Coroutine[Any, Any, Any], name: Optional[str]) -> None:
        self._coro = coro
        self._name = name
        self._task: Optional[asyncio.Task[Any]] = None
        self._cancelled = False

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._cancelled or self._task is not None:
            return
        self._task = loop.create_task(self._coro, name=self._name)

    def cancel(self, msg: Any = None) -> bool:
        if self._task is not None:
            return self._task.cancel(msg)
        if self._cancelled:
            return False
        self._cancelled = True
        _drop_pending(self)
        self._coro.close()
        return True

    def cancelled(self) -> bool:
        return self._task.cancelled() if self._task is not None else self._cancelled

    def done(self) -> bool:
        return self._task.done() if self._task is not None else self._cancelled

    def result(self) -> Any:
        if self._task is not None:
            return self._task.result()
        if self._cancelled:
            raise asyncio.CancelledError()
        raise asyncio.InvalidStateError("Result is not set.")

    def __await__(self) -> Any:
        if self._task is None:
            if self._cancelled:
                raise asyncio.CancelledError()
            # Awaited from inside a loop before that loop started it: start it there.
            self._start(asyncio.get_running_loop())
            _drop_pending(self)
        assert self._task is not None
        return self._task.__await__()

    def __repr__(self) -> str:
        state = repr(self._task) if self._task is not None else (
            "cancelled" if self._cancelled else "waiting for a loop")
        return f"<PendingTask {state}>"


_pending_lock = threading.Lock()
_pending: list[PendingTask] = []


def _drop_pending(task: PendingTask) -> None:
    with _pending_lock:
        if task in _pending:
            _pending.remove(task)


def start_pending(loop: asyncio.AbstractEventLoop) -> None:
    """Start on ``loop`` every task ``create_task`` queued while no loop ran (in order)."""
    with _pending_lock:
        queued = list(_pending)
        _pending.clear()
    for task in queued:
        task._start(loop)


_create_task = asyncio.create_task


def create_task(coro: Coroutine[Any, Any, Any], *, name: Optional[str] = None,
                **kwargs: Any) -> Any:
    """``asyncio.create_task`` that also works when no loop runs (see the module doc)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if not asyncio.iscoroutine(coro):
            raise TypeError(f"a coroutine was expected, got {coro!r}") from None
        task = PendingTask(coro, name)
        with _pending_lock:
            _pending.append(task)
        return task
    return _create_task(coro, name=name, **kwargs)


# -- the event loop --------------------------------------------------------------------------

#: Called by the loops of EventLoopPolicy just before (on_idle) and after (on_wake) they wait
#: with nothing to run; set by install().
_on_idle: _IdleHook = None
_on_wake: _IdleHook = None


class _IdleSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The loop's selector: a select() that may block is the loop being idle."""

    def __init__(self, on_blocking: Callable[[], None]) -> None:
        super().__init__()
        self._on_blocking = on_blocking

    def select(self, timeout: Optional[float] = None) -> Any:
        if timeout is not None and timeout <= 0:
            return super().select(timeout)        # only polling: callbacks are ready to run
        self._on_blocking()
        on_idle, on_wake = _on_idle, _on_wake
        if on_idle is not None:
            on_idle()
        try:
            return super().select(timeout)
        finally:
            if on_wake is not None:
                on_wake()


class EventLoop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]
    """A selector event loop that starts the queued pre-loop tasks when it starts running and
    reports its idle waits (see the module doc)."""

    def __init__(self) -> None:
        self._idle_cond = threading.Condition()
        #: Times the loop has been idle (waited with nothing to run), ended or closed.
        self.idle_count = 0
        super().__init__(_IdleSelector(self.note_idle))

    def note_idle(self) -> None:
        with self._idle_cond:
            self.idle_count += 1
            self._idle_cond.notify_all()

    def wait_idle_after(self, idle_count: int, deadline: float) -> bool:
        """Wait until the loop has been idle after ``idle_count`` (or until ``deadline``, a
        time.monotonic() value); True if it has."""
        with self._idle_cond:
            return self._idle_cond.wait_for(lambda: self.idle_count > idle_count,
                                            max(0.0, deadline - time.monotonic()))

    def run_forever(self) -> None:
        start_pending(self)
        try:
            super().run_forever()
        finally:
            self.note_idle()          # a stopped loop runs no task: nobody waits for it

    def close(self) -> None:
        super().close()
        self.note_idle()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,valid-type]
    """Every loop it makes (asyncio.run, new_event_loop, get_event_loop) is an EventLoop."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return EventLoop()


def install(on_idle: _IdleHook = None, on_wake: _IdleHook = None) -> None:
    """Give the real ``asyncio`` module MicroPython's names (idempotent), make its loops
    EventLoops, and set the idle hooks (None: none)."""
    global _on_idle, _on_wake
    _on_idle, _on_wake = on_idle, on_wake
    asyncio.ThreadSafeFlag = ThreadSafeFlag          # type: ignore[attr-defined]
    asyncio.sleep_ms = sleep_ms                      # type: ignore[attr-defined]
    asyncio.wait_for_ms = wait_for_ms                # type: ignore[attr-defined]
    asyncio.create_task = create_task                # type: ignore[assignment]
    if not isinstance(_get_policy(), EventLoopPolicy):
        with warnings.catch_warnings():
            # Policies are deprecated from Python 3.14 (removal planned for 3.16); until then
            # they are the one hook that covers asyncio.run, new_event_loop and get_event_loop.
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(EventLoopPolicy())


def _get_policy() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return asyncio.get_event_loop_policy()
