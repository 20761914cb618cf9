"""GATT client procedures of one board, API-neutral: each one a future.

The board runs a GATT client procedure as a call (which only starts it) followed by events
(results, then a done event with an ATT status). This module turns each procedure into one
:class:`concurrent.futures.Future` whose result is the whole answer:

- ``discover_services`` -> list of :class:`RemoteService`;
- ``discover_characteristics`` -> list of :class:`RemoteCharacteristic`, each with its end
  handle (the handle before the next characteristic's declaration, or the range's end), which
  the board's events do not carry;
- ``discover_descriptors`` -> list of :class:`RemoteDescriptor`;
- ``read`` -> bytes, ``write`` -> None (with response: once the peer confirmed it),
  ``exchange_mtu`` -> the ATT MTU agreed.

A procedure fails with :class:`GattStatusError` (the peer's ATT error or a local failure
status from the done event), :class:`ConnectionClosed` (the connection ended first), the
call's own error (``BoardError``), or ``BoardLost``. Discoveries on one connection run one at
a time (the done events only name the connection), queued here in the order they were asked
for; reads and writes of one handle are answered in order.

Futures complete on the board's dispatcher thread; ``on_change`` (if given) is called there
after each completion, so an asyncio layer can wake its loop.
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable, NamedTuple, Optional

from .. import calls
from .. import protocol as P
from ..errors import BlebridgeError
from .session import Session

_DISCONNECT = (P.EV_CENTRAL_DISCONNECT, P.EV_PERIPHERAL_DISCONNECT)
_EVENTS = frozenset((
    P.EV_GATTC_SERVICE_RESULT, P.EV_GATTC_SERVICE_DONE,
    P.EV_GATTC_CHARACTERISTIC_RESULT, P.EV_GATTC_CHARACTERISTIC_DONE,
    P.EV_GATTC_DESCRIPTOR_RESULT, P.EV_GATTC_DESCRIPTOR_DONE,
    P.EV_GATTC_READ_RESULT, P.EV_GATTC_READ_DONE, P.EV_GATTC_WRITE_DONE,
    P.EV_MTU_EXCHANGED, *_DISCONNECT))
#: Write modes of the board's gattc_write.
WRITE_NO_RESPONSE, WRITE_WITH_RESPONSE = 0, 1
#: Largest attribute handle (Core spec Vol 3 Part F 3.2.2).
HANDLE_MAX = 0xFFFF


class GattStatusError(BlebridgeError):
    """A GATT client procedure ended with a non-zero status (``.status``; an ATT error code
    from the peer, or the board's status for a local failure)."""

    def __init__(self, status: int, operation: str) -> None:
        super().__init__(f"{operation}: GATT status 0x{status:02x}")
        self.status = status
        self.operation = operation


class ConnectionClosed(BlebridgeError, ConnectionError):
    """The connection ended before the procedure finished."""

    def __init__(self, conn: int, operation: str) -> None:
        super().__init__(f"{operation}: connection {conn} ended")
        self.conn = conn
        self.operation = operation


class RemoteService(NamedTuple):
    start_handle: int
    end_handle: int
    uuid: bytes          # as on air (little-endian), 2, 4 or 16 bytes


class RemoteCharacteristic(NamedTuple):
    def_handle: int
    value_handle: int
    end_handle: int      # last handle that belongs to it (its descriptors are up to here)
    properties: int
    uuid: bytes


class RemoteDescriptor(NamedTuple):
    handle: int
    uuid: bytes


class _Discovery:
    __slots__ = ("kind", "future", "start", "end", "uuid", "results", "operation")

    def __init__(self, kind: str, start: int, end: int, uuid: Optional[bytes], operation: str) -> None:
        self.kind = kind
        self.future: Future = Future()
        self.start, self.end, self.uuid = start, end, uuid
        self.results: list = []
        self.operation = operation


class GattClient:
    """The GATT client of one board's session (one per API layer object)."""

    def __init__(self, session: Session, on_change: Optional[Callable[[], Any]] = None) -> None:
        self.session = session
        self.board = session.board
        self._on_change = on_change
        self._lock = threading.Lock()
        # conn -> discoveries, the first one running.
        self._discoveries: dict[int, deque[_Discovery]] = {}
        # (conn, handle) -> futures of reads / writes with response in the order asked.
        self._reads: dict[tuple[int, int], deque[list]] = {}
        self._writes: dict[tuple[int, int], deque[Future]] = {}
        self._mtu: dict[int, list[Future]] = {}
        self._sub = session.subscribe(self._on_event, _EVENTS)
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.session.unsubscribe(self._sub)

    # -- procedures ------------------------------------------------------------------------------

    def discover_services(self, conn: int, uuid: Optional[bytes] = None) -> Future:
        return self._discover(conn, _Discovery("services", 1, HANDLE_MAX, uuid, "discover services"))

    def discover_characteristics(self, conn: int, start: int, end: int,
                                 uuid: Optional[bytes] = None) -> Future:
        return self._discover(conn, _Discovery("characteristics", start, end, uuid,
                                               "discover characteristics"))

    def discover_descriptors(self, conn: int, start: int, end: int) -> Future:
        """Descriptors in ``start..end`` (pass the characteristic's value handle + 1)."""
        return self._discover(conn, _Discovery("descriptors", start, end, None, "discover descriptors"))

    def read(self, conn: int, value_handle: int) -> Future:
        entry: list = [Future(), b""]
        with self._lock:
            self._reads.setdefault((conn, value_handle), deque()).append(entry)
        self._start(entry[0], calls.gattc_read_nowait(self.board, conn=conn, value_handle=value_handle),
                    lambda: self._drop(self._reads, (conn, value_handle), entry))
        return entry[0]

    def write(self, conn: int, value_handle: int, data: bytes, response: bool) -> Future:
        mode = WRITE_WITH_RESPONSE if response else WRITE_NO_RESPONSE
        call = calls.gattc_write_nowait
        if not response:
            fut: Future = Future()
            self._start(fut, call(self.board, conn=conn, value_handle=value_handle, data=data, mode=mode),
                        None, done_on_call=True)
            return fut
        fut = Future()
        with self._lock:
            self._writes.setdefault((conn, value_handle), deque()).append(fut)
        self._start(fut, call(self.board, conn=conn, value_handle=value_handle, data=data, mode=mode),
                    lambda: self._drop(self._writes, (conn, value_handle), fut))
        return fut

    def exchange_mtu(self, conn: int) -> Future:
        fut: Future = Future()
        with self._lock:
            self._mtu.setdefault(conn, []).append(fut)

        def undo() -> None:
            with self._lock:
                waiting = self._mtu.get(conn, [])
                if fut in waiting:
                    waiting.remove(fut)
        self._start(fut, calls.gattc_exchange_mtu_nowait(self.board, conn=conn), undo)
        return fut

    # -- plumbing --------------------------------------------------------------------------------

    def _discover(self, conn: int, disc: _Discovery) -> Future:
        with self._lock:
            queue = self._discoveries.setdefault(conn, deque())
            queue.append(disc)
            first = len(queue) == 1
        if first:
            self._begin(conn, disc)
        return disc.future

    def _begin(self, conn: int, disc: _Discovery) -> None:
        uuid = disc.uuid
        if disc.kind == "services":
            call = calls.gattc_discover_services_nowait(self.board, conn=conn, uuid=uuid)
        elif disc.kind == "characteristics":
            # Every characteristic is asked for: the next one's declaration ends the one
            # before, even when the filter leaves it out.
            call = calls.gattc_discover_characteristics_nowait(
                self.board, conn=conn, start_handle=disc.start, end_handle=disc.end, uuid=None)
        else:
            call = calls.gattc_discover_descriptors_nowait(
                self.board, conn=conn, start_handle=disc.start, end_handle=disc.end)
        self._start(disc.future, call, lambda: self._finish_discovery(conn, disc))

    def _finish_discovery(self, conn: int, disc: _Discovery) -> None:
        """Take ``disc`` off its connection's queue and start the next one."""
        with self._lock:
            queue = self._discoveries.get(conn)
            if not queue or queue[0] is not disc:
                return
            queue.popleft()
            nxt = queue[0] if queue else None
            if not queue:
                del self._discoveries[conn]
        if nxt is not None:
            self._begin(conn, nxt)

    def _start(self, fut: Future, call: Future, undo: Optional[Callable[[], None]],
               done_on_call: bool = False) -> None:
        """Fail ``fut`` (and ``undo`` its bookkeeping) if the call starting it fails."""
        def started(c: Future) -> None:
            exc = c.exception()
            if exc is not None:
                if undo is not None:
                    undo()
                self._complete(fut, exc=exc)
            elif done_on_call:
                self._complete(fut, result=None)
        call.add_done_callback(started)

    def _complete(self, fut: Future, result: Any = None, exc: Optional[BaseException] = None) -> None:
        if fut.done():
            return
        try:
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(result)
        except Exception:   # completed meanwhile (InvalidStateError): the first outcome stands
            return
        if self._on_change is not None:
            self._on_change()

    @staticmethod
    def _drop(table: dict, key: Any, item: Any) -> None:
        queue = table.get(key)
        if queue is not None and item in queue:
            queue.remove(item)
            if not queue:
                del table[key]

    def _running(self, conn: int) -> Optional[_Discovery]:
        with self._lock:
            queue = self._discoveries.get(conn)
            return queue[0] if queue else None

    def _on_event(self, ev: Any) -> None:
        code, f = ev.code, ev.typed
        conn = int(f.conn)
        if code in (P.EV_GATTC_SERVICE_RESULT, P.EV_GATTC_CHARACTERISTIC_RESULT,
                    P.EV_GATTC_DESCRIPTOR_RESULT):
            disc = self._running(conn)
            if disc is not None:
                disc.results.append(f)
        elif code in (P.EV_GATTC_SERVICE_DONE, P.EV_GATTC_CHARACTERISTIC_DONE,
                      P.EV_GATTC_DESCRIPTOR_DONE):
            disc = self._running(conn)
            if disc is None:
                return
            self._finish_discovery(conn, disc)
            status = int(f.status)
            if status:
                self._complete(disc.future, exc=GattStatusError(status, disc.operation))
            else:
                self._complete(disc.future, result=self._discovered(disc))
        elif code == P.EV_GATTC_READ_RESULT:
            with self._lock:
                queue = self._reads.get((conn, int(f.value_handle)))
                if queue:
                    queue[0][1] += bytes(f.data)
        elif code == P.EV_GATTC_READ_DONE:
            with self._lock:
                key = (conn, int(f.value_handle))
                queue = self._reads.get(key)
                entry = queue.popleft() if queue else None
                if queue is not None and not queue:
                    del self._reads[key]
            if entry is not None:
                status = int(f.status)
                if status:
                    self._complete(entry[0], exc=GattStatusError(status, "read"))
                else:
                    self._complete(entry[0], result=bytes(entry[1]))
        elif code == P.EV_GATTC_WRITE_DONE:
            with self._lock:
                key = (conn, int(f.value_handle))
                queue = self._writes.get(key)
                fut = queue.popleft() if queue else None
                if queue is not None and not queue:
                    del self._writes[key]
            if fut is not None:
                status = int(f.status)
                if status:
                    self._complete(fut, exc=GattStatusError(status, "write"))
                else:
                    self._complete(fut, result=None)
        elif code == P.EV_MTU_EXCHANGED:
            with self._lock:
                waiting = self._mtu.pop(conn, [])
            for fut in waiting:
                self._complete(fut, result=int(f.mtu))
        elif code in _DISCONNECT:
            self._fail_connection(conn)

    def _fail_connection(self, conn: int) -> None:
        with self._lock:
            discs = list(self._discoveries.pop(conn, ()))
            reads = [e[0] for k in [k for k in self._reads if k[0] == conn] for e in self._reads.pop(k)]
            writes = [f for k in [k for k in self._writes if k[0] == conn] for f in self._writes.pop(k)]
            mtus = self._mtu.pop(conn, [])
        for disc in discs:
            self._complete(disc.future, exc=ConnectionClosed(conn, disc.operation))
        for fut in reads:
            self._complete(fut, exc=ConnectionClosed(conn, "read"))
        for fut in writes:
            self._complete(fut, exc=ConnectionClosed(conn, "write"))
        for fut in mtus:
            self._complete(fut, exc=ConnectionClosed(conn, "exchange MTU"))

    def fail_all(self, exc: BaseException) -> None:
        """Fail every procedure in progress with ``exc`` (the board was lost or turned off)."""
        with self._lock:
            futs = [d.future for q in self._discoveries.values() for d in q]
            futs += [e[0] for q in self._reads.values() for e in q]
            futs += [f for q in self._writes.values() for f in q]
            futs += [f for fs in self._mtu.values() for f in fs]
            self._discoveries.clear()
            self._reads.clear()
            self._writes.clear()
            self._mtu.clear()
        for fut in futs:
            self._complete(fut, exc=exc)

    @staticmethod
    def _discovered(disc: _Discovery) -> list:
        if disc.kind == "services":
            return [RemoteService(int(r.start_handle), int(r.end_handle), bytes(r.uuid))
                    for r in disc.results]
        if disc.kind == "descriptors":
            return [RemoteDescriptor(int(r.handle), bytes(r.uuid)) for r in disc.results]
        out = []
        rs = sorted(disc.results, key=lambda r: int(r.def_handle))
        for i, r in enumerate(rs):
            end = int(rs[i + 1].def_handle) - 1 if i + 1 < len(rs) else disc.end
            if disc.uuid is None or bytes(r.uuid) == disc.uuid:
                out.append(RemoteCharacteristic(int(r.def_handle), int(r.value_handle), end,
                                                int(r.properties), bytes(r.uuid)))
        return out
