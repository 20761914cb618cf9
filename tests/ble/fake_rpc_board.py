"""A stand-in for blebridge.Board for the ble/ layer's unit tests: listeners, calls recorded and
answered (OK unless told otherwise), events handed to the listeners on the test's thread."""
from __future__ import annotations

import concurrent.futures
from typing import Any, Callable

from blebridge import protocol as P
from blebridge.errors import BoardError
from blebridge.wire import make_event


class FakeRpcBoard:
    def __init__(self) -> None:
        self.events: list[Callable] = []
        self.lost: list[Callable] = []
        self.calls: list[tuple] = []
        #: method -> status to fail it with.
        self.fail: dict[str, int] = {}
        self.results: dict[str, Any] = {}

    def add_event_listener(self, fn: Callable) -> None:
        self.events.append(fn)

    def remove_event_listener(self, fn: Callable) -> None:
        self.events.remove(fn)

    def add_lost_listener(self, fn: Callable) -> None:
        self.lost.append(fn)

    def remove_lost_listener(self, fn: Callable) -> None:
        self.lost.remove(fn)

    def call_nowait(self, method: str, *args: Any, timeout: Any = None) -> concurrent.futures.Future:
        self.calls.append((method, *args))
        fut: concurrent.futures.Future = concurrent.futures.Future()
        if method in self.fail:
            fut.set_exception(BoardError(self.fail[method], method))
        else:
            fut.set_result(self.results.get(method))
        return fut

    def call(self, method: str, *args: Any, timeout: Any = None) -> Any:
        return self.call_nowait(method, *args).result()

    def close(self) -> None:
        pass

    def event(self, name: str, *fields: Any) -> None:
        ev = make_event(P.EVENTS_BY_NAME[name].code, tuple(fields))
        for fn in list(self.events):
            fn(ev)

    def methods(self) -> list[str]:
        return [c[0] for c in self.calls]
