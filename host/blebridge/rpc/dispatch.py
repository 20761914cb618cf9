"""The dispatcher: one thread per board that delivers what the port brought, in wire order.

Whoever reads the port (the reader thread, or a caller of board.call() holding the read token)
puts items on :attr:`Dispatcher.queue`, one put per chunk's events; this thread hands them to
the listeners. It never reads the port, so listeners may call ``board.call()``.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

from ..linkseq import LinkGap
from ..wire import Event

# The RPC client's logger: listener errors and gap warnings keep its name.
log = logging.getLogger("blebridge.rpc")

# Queue items: (kind, payload).
Q_EVENTS = 0       # payload: list[Event]
Q_LOST = 1         # payload: BoardLost (unplugged) -> lost listeners
Q_RESET = 2        # payload: BoardReset -> lost listeners, then after_reset()
Q_STOP = 3
Q_GAP = 4          # payload: LinkGap -> gap listeners (or a warning)
Q_CALL = 5         # payload: a function of no arguments the board runs on this thread


class Dispatcher:
    """A board's listeners and the thread that calls them.

    ``counters`` is the board's counter dict (``listener_errors`` is counted here);
    ``after_reset`` runs on this thread after the lost listeners have heard of a reset.
    """

    def __init__(self, spec: str, counters: dict[str, int], after_reset: Callable[[], None]) -> None:
        self.spec = spec
        self.queue: "queue.SimpleQueue[tuple[int, Any]]" = queue.SimpleQueue()
        self._counters = counters
        self._after_reset = after_reset
        self._lock = threading.Lock()
        self._listeners: tuple[Callable[[Event], Any], ...] = ()
        self._lost_listeners: tuple[Callable[[BaseException], Any], ...] = ()
        self._gap_listeners: tuple[Callable[[LinkGap], Any], ...] = ()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"blebridge-dispatch {spec}")
        self._thread.start()

    def stop(self, join_timeout: float) -> None:
        """Deliver what is queued, then end the thread (waits up to ``join_timeout`` s)."""
        self.queue.put((Q_STOP, None))
        if self._thread is not threading.current_thread():
            self._thread.join(join_timeout)

    # -- listeners: tuples replaced under a lock, read without one by the thread -------------

    def add_event_listener(self, fn: Callable[[Event], Any]) -> None:
        with self._lock:
            self._listeners = self._listeners + (fn,)

    def remove_event_listener(self, fn: Callable[[Event], Any]) -> None:
        with self._lock:
            self._listeners = _without(self._listeners, fn)

    def add_lost_listener(self, fn: Callable[[BaseException], Any]) -> None:
        with self._lock:
            self._lost_listeners = self._lost_listeners + (fn,)

    def remove_lost_listener(self, fn: Callable[[BaseException], Any]) -> None:
        with self._lock:
            self._lost_listeners = _without(self._lost_listeners, fn)

    def add_gap_listener(self, fn: Callable[[LinkGap], Any]) -> None:
        with self._lock:
            self._gap_listeners = self._gap_listeners + (fn,)

    def remove_gap_listener(self, fn: Callable[[LinkGap], Any]) -> None:
        with self._lock:
            self._gap_listeners = _without(self._gap_listeners, fn)

    # -- the thread ----------------------------------------------------------------------------

    def _loop(self) -> None:
        get = self.queue.get
        while True:
            kind, payload = get()
            if kind == Q_EVENTS:
                listeners = self._listeners
                if len(listeners) == 1:
                    fn = listeners[0]
                    for ev in payload:
                        try:
                            fn(ev)
                        except Exception:
                            self._listener_error(fn, ev)
                else:
                    for ev in payload:
                        for fn in listeners:
                            try:
                                fn(ev)
                            except Exception:
                                self._listener_error(fn, ev)
            elif kind == Q_STOP:
                return
            elif kind == Q_GAP:
                self._dispatch_gap(payload)
            elif kind == Q_CALL:
                try:
                    payload()
                except Exception:
                    log.exception("%s: %r raised on the dispatcher thread", self.spec, payload)
            else:
                for lost_fn in self._lost_listeners:
                    try:
                        lost_fn(payload)
                    except Exception:
                        self._counters["listener_errors"] += 1
                        log.exception("%s: lost listener %r raised", self.spec, lost_fn)
                if kind == Q_RESET:
                    self._after_reset()

    def _dispatch_gap(self, gap: LinkGap) -> None:
        listeners = self._gap_listeners
        if not listeners:
            log.warning("%s: %s", self.spec, gap.describe())
        for fn in listeners:
            try:
                fn(gap)
            except Exception:
                self._counters["listener_errors"] += 1
                log.exception("%s: gap listener %r raised", self.spec, fn)

    def _listener_error(self, fn: Callable, ev: Event) -> None:
        self._counters["listener_errors"] += 1
        log.exception("%s: event listener %r raised on %s", self.spec, fn, ev.name)


def _without(fns: tuple, fn: Callable) -> tuple:
    """``fns`` less the first occurrence of ``fn`` (unchanged when absent)."""
    ls = list(fns)
    if fn in ls:
        ls.remove(fn)
    return tuple(ls)
