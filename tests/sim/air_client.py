"""A board's side of the air link written in Python: drives the air the way bb_sim's port does.

Used by the air tests to check the air's ops and events without the C firmware. Blocking, with
a timeout on every wait.
"""
from __future__ import annotations

import socket
import time
from collections import deque
from typing import Any, Callable, Optional

from blebridge.sim.board import EVENT_RECORD_OVERHEAD
from blebridge.sim.port_link import (MSG_EVT, MSG_POST, MSG_REQ, MSG_RSP, FrameDecoder,
                                     decode_message, encode_message)

DEFAULT_TIMEOUT = 5.0


class AirOpError(OSError):
    """An op answered with a negative errno."""

    def __init__(self, op: str, err: int) -> None:
        super().__init__(-err, f"air op {op} failed with errno {-err}")
        self.op = op


class AirClient:
    def __init__(self, socket_path: str, name: str, auto_ack: bool = True) -> None:
        """``auto_ack`` False: events are not acknowledged (a port whose queue is full)."""
        self.name = name
        self.auto_ack = auto_ack
        #: Bytes of events received, as the air counts them for its window.
        self.received_event_bytes = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(socket_path)
        self.decoder = FrameDecoder()
        self.events: deque[tuple[str, tuple[Any, ...]]] = deque()
        self.responses: dict[int, tuple[int, Any]] = {}
        self.ack_ids: set[int] = set()
        self.next_id = 1
        self.addr_type, self.addr = self.call("hello", name)

    def close(self) -> None:
        self.sock.close()

    def _pump(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{self.name}: nothing from the air in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout as exc:
            raise TimeoutError(f"{self.name}: nothing from the air in time") from exc
        if not chunk:
            raise ConnectionError(f"{self.name}: air closed the connection")
        consumed = 0
        for payload in self.decoder.feed(chunk):
            msg = decode_message(payload)
            if msg[0] == MSG_RSP:
                if msg[1] in self.ack_ids:
                    self.ack_ids.discard(msg[1])
                else:
                    self.responses[msg[1]] = (msg[2], msg[3])
            elif msg[0] == MSG_EVT:
                self.events.append((msg[1], tuple(msg[2:])))
                consumed += len(payload) + EVENT_RECORD_OVERHEAD
        self.received_event_bytes += consumed
        if consumed and self.auto_ack:
            # Events are kept here without bound: acknowledge them at once (the air's window).
            self.ack(consumed)

    def ack(self, consumed: int) -> None:
        """Tell the air ``consumed`` bytes of events left the queue (no response awaited)."""
        self.ack_ids.add(self.next_id)
        self.sock.sendall(encode_message([MSG_REQ, self.next_id, "ack", consumed]))
        self.next_id += 1

    def post(self, op: str, *args: Any) -> None:
        """Send op ``op`` as a post: performed in order, no response (as bb_sim's notify)."""
        self.sock.sendall(encode_message([MSG_POST, op, *args]))

    def call(self, op: str, *args: Any, timeout: float = DEFAULT_TIMEOUT) -> Any:
        return self.pipeline((op, *args), timeout=timeout)[0]

    def pipeline(self, *calls: tuple[Any, ...], timeout: float = DEFAULT_TIMEOUT) -> list[Any]:
        """Send every ``(op, args...)`` in one write, before any response, and return their
        results in order (the air reads them in one go: no time passes between them)."""
        ids = list(range(self.next_id, self.next_id + len(calls)))
        self.next_id += len(calls)
        self.sock.sendall(b"".join(encode_message([MSG_REQ, msg_id, *call])
                                   for msg_id, call in zip(ids, calls)))
        deadline = time.monotonic() + timeout
        results = []
        for msg_id, call in zip(ids, calls):
            while msg_id not in self.responses:
                self._pump(deadline)
            err, result = self.responses.pop(msg_id)
            if err:
                raise AirOpError(call[0], err)
            results.append(result)
        return results

    def wait(self, name: str, match: Optional[Callable[[tuple[Any, ...]], bool]] = None,
             timeout: float = DEFAULT_TIMEOUT) -> tuple[Any, ...]:
        """Fields of the first (oldest) event NAME (that matches); earlier ones are kept."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (ev_name, fields) in enumerate(self.events):
                if ev_name == name and (match is None or match(fields)):
                    del self.events[i]
                    return fields
            try:
                self._pump(deadline)
            except TimeoutError:
                seen = [e[0] for e in self.events]
                raise TimeoutError(f"{self.name}: no {name} event; queued: {seen}") from None

    def drain(self, settle: float = 0.2) -> list[tuple[str, tuple[Any, ...]]]:
        """Every event that arrives within ``settle`` seconds, plus those already queued."""
        deadline = time.monotonic() + settle
        while True:
            try:
                self._pump(deadline)
            except TimeoutError:
                break
        out = list(self.events)
        self.events.clear()
        return out

    def answer(self, kind: int, ref: int, found: bool = False, u: int = 0,
               data: Optional[bytes] = None) -> None:
        self.call("answer", kind, ref, False, found, u, data)
