"""A stand-in for blebridge.Board: records calls, answers from a script, delivers events.

Unit tests of the bluetooth module use it to check argument handling, tuple shapes and status
mapping without a simulator. Events are delivered synchronously on the caller's thread (run emit_batch
on another thread to play the dispatcher).
"""
from __future__ import annotations

import concurrent.futures
import time
from typing import Any, Callable

from blebridge import protocol as P
from blebridge.errors import BoardError
from blebridge.rpc import Event


class FakeBoard:
    def __init__(self, addr: bytes = bytes([1, 2, 3, 4, 5, 6])) -> None:
        self.calls: list[tuple] = []
        self.replies: list[tuple] = []
        self.results: dict[str, Any] = {}
        self.spec = "fake:board"
        self.info = type("Info", (), {"addr": addr, "caps": {"max_l2cap_mtu": 1024}})()
        self._listeners: list[Callable] = []
        self._lost: list[Callable] = []
        self._gaps: list[Callable] = []
        self.active = False
        self.events_received = 0   # host_counters()["events"], as blebridge.Board counts them

    # -- Board API used by blebridge.micropython ----------------------------------------------
    def call(self, method: str, *args: Any, timeout: Any = None) -> Any:
        self.calls.append((method,) + args)
        result = self.results.get(method)
        if callable(result):
            return result(*args)
        if isinstance(result, BoardError):
            raise result
        if method == "ble_active":
            if args[0] is not None:
                self.active = bool(args[0])
            return self.active
        return result

    def call_nowait(self, method: str, *args: Any, timeout: Any = None) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        if method == "reply":
            self.replies.append(args)
        try:
            fut.set_result(self.call(method, *args))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut

    def add_event_listener(self, fn: Callable) -> None:
        self._listeners.append(fn)

    def remove_event_listener(self, fn: Callable) -> None:
        self._listeners.remove(fn)

    def add_lost_listener(self, fn: Callable) -> None:
        self._lost.append(fn)

    def remove_lost_listener(self, fn: Callable) -> None:
        self._lost.remove(fn)

    def add_gap_listener(self, fn: Callable) -> None:
        self._gaps.append(fn)

    def remove_gap_listener(self, fn: Callable) -> None:
        self._gaps.remove(fn)

    def close(self) -> None:
        pass

    def host_counters(self) -> dict[str, int]:
        return {"events": self.events_received}

    # -- test helpers -------------------------------------------------------------------------
    def lose_frames(self, n: int) -> None:
        """Tell the gap listeners, as the dispatcher does, that the link lost n event frames."""
        from blebridge.linkseq import LinkGap
        for fn in list(self._gaps):
            fn(LinkGap(n, 5, 5 + n, 1, n))

    def emit(self, name: str, *fields: Any) -> None:
        self.events_received += 1
        self._deliver(name, fields)

    def emit_batch(self, events: list[tuple], gap_s: float = 0.0) -> None:
        """Deliver one batch as the dispatcher does: all counted as received first, then each
        in turn, ``gap_s`` seconds apart (a dispatcher thread kept off the CPU between them)."""
        self.events_received += len(events)
        for i, (name, *fields) in enumerate(events):
            if i and gap_s:
                time.sleep(gap_s)
            self._deliver(name, tuple(fields))

    def _deliver(self, name: str, fields: tuple) -> None:
        ev = Event(P.EVENTS_BY_NAME[name].code, name, tuple(fields))
        for fn in list(self._listeners):
            fn(ev)

    def fail(self, method: str, status_name: str) -> None:
        self.results[method] = BoardError(P.STATUS[status_name], method)

    def methods(self) -> list[str]:
        return [c[0] for c in self.calls]
