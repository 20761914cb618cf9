"""L2CAP connection-oriented channels of one board, API-neutral.

The board opens, feeds and closes channels with calls and reports them with events
(L2CAP_CONNECT, L2CAP_DISCONNECT with a status, L2CAP_RECV with data, L2CAP_SEND_READY after a
send that stalled). :class:`L2cap` keeps one :class:`Channel` per open channel with its
received bytes, whether sending is stalled, and how it ended; ``connect`` is a future of the
channel, ``accepted`` hands out the channels peers opened to a PSM we listen on.

A connect the peer refuses at once is tried again for CONNECT_RETRY_S: on a radio the request
reaches the peer a connection interval or more after the connection, by when a peer that
listens on its connect event listens; the simulated link has no such delay.

Changes are made on the board's dispatcher thread; ``on_change`` (if given) is called there
after each, so an asyncio layer can wake its loop.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable, Optional

from .. import calls
from .. import protocol as P
from ..errors import BlebridgeError, BoardError
from .session import Session

#: How long a refused connect is tried again (s), and the pause between tries (s).
CONNECT_RETRY_S = 0.3
CONNECT_RETRY_GAP_S = 0.02
_DISCONNECT = (P.EV_CENTRAL_DISCONNECT, P.EV_PERIPHERAL_DISCONNECT)
_EVENTS = frozenset((P.EV_L2CAP_CONNECT, P.EV_L2CAP_DISCONNECT, P.EV_L2CAP_RECV,
                     P.EV_L2CAP_SEND_READY, *_DISCONNECT))


class ChannelRefused(BlebridgeError, ConnectionError):
    """The peer refused (or the board could not open) a channel; ``.status`` says why
    (an L2CAP result code or the board's status)."""

    def __init__(self, status: int, psm: int) -> None:
        super().__init__(f"L2CAP connect to PSM {psm}: refused with status {status}")
        self.status = status
        self.psm = psm


class Channel:
    """One L2CAP channel. ``rx`` holds received bytes not taken yet; ``open`` turns False when
    it ends (``status``: 0, or why); ``stalled``: the last send must drain before the next."""

    __slots__ = ("conn", "cid", "psm", "our_mtu", "peer_mtu", "rx", "open", "stalled", "status",
                 "ready_events")

    def __init__(self, conn: int, cid: int, psm: int, our_mtu: int, peer_mtu: int) -> None:
        self.conn, self.cid, self.psm = conn, cid, psm
        self.our_mtu, self.peer_mtu = our_mtu, peer_mtu
        self.rx = bytearray()
        self.open = True
        self.stalled = False
        self.status = 0
        #: L2CAP_SEND_READY events handled so far (send() compares it around its call).
        self.ready_events = 0

    def __repr__(self) -> str:
        return (f"<Channel conn={self.conn} cid={self.cid} psm={self.psm} "
                f"mtu={self.our_mtu}/{self.peer_mtu}{'' if self.open else ' closed'}>")


class L2cap:
    """The L2CAP channels of one board's session (one per API layer object)."""

    def __init__(self, session: Session, on_change: Optional[Callable[[], Any]] = None) -> None:
        self.session = session
        self.board = session.board
        self._on_change = on_change
        self._lock = threading.Lock()
        self.channels: dict[tuple[int, int], Channel] = {}
        # (conn, psm) -> (future, mtu, retry deadline) of our connects not answered yet.
        self._connecting: dict[tuple[int, int], tuple[Future, int, float]] = {}
        # conn -> channels peers opened to us, not handed out yet.
        self._accepted: dict[int, deque[Channel]] = {}
        #: PSMs listened on (a board listens until its radio is turned off).
        self.listening: set[int] = set()
        self._sub = session.subscribe(self._on_event, _EVENTS)

    def close(self) -> None:
        self.session.unsubscribe(self._sub)

    def forget(self) -> None:
        """The radio was turned off: no channel, connect or listen is left."""
        with self._lock:
            chans = list(self.channels.values())
            self.channels.clear()
            self._accepted.clear()
            self.listening.clear()
            pending = list(self._connecting.items())
            self._connecting.clear()
        for chan in chans:
            chan.open = False
        for (conn, psm), (fut, _, _) in pending:
            if not fut.done():
                fut.set_exception(ChannelRefused(-1, psm))

    # -- operations ------------------------------------------------------------------------------

    def listen(self, psm: int, mtu: int) -> None:
        """Accept channels to ``psm`` (blocking call); listening again on a PSM does nothing."""
        if psm in self.listening:
            return
        calls.l2cap_listen(self.board, psm=psm, mtu=mtu)
        self.listening.add(psm)

    def connect(self, conn: int, psm: int, mtu: int) -> Future:
        """Open a channel to ``psm``: a future of the :class:`Channel`, or ChannelRefused."""
        fut: Future = Future()
        with self._lock:
            self._connecting[(conn, psm)] = (fut, mtu, time.monotonic() + CONNECT_RETRY_S)
        self._call_connect(conn, psm, mtu, fut)
        return fut

    def _call_connect(self, conn: int, psm: int, mtu: int, fut: Future) -> None:
        def started(c: Future) -> None:
            exc = c.exception()
            if exc is not None:
                with self._lock:
                    if self._connecting.get((conn, psm), (None,))[0] is fut:
                        del self._connecting[(conn, psm)]
                if not fut.done():
                    fut.set_exception(exc)
                self._changed()
        calls.l2cap_connect_nowait(self.board, conn=conn, psm=psm, mtu=mtu).add_done_callback(started)

    def accepted(self, conn: int) -> Optional[Channel]:
        """The next channel a peer opened on connection ``conn``, or None."""
        with self._lock:
            queue = self._accepted.get(conn)
            return queue.popleft() if queue else None

    def send(self, chan: Channel, data: bytes) -> bool:
        """Send one SDU (blocking call); False: stalled, wait for ``chan.stalled`` to clear."""
        with self._lock:
            ready_before = chan.ready_events
        more = bool(calls.l2cap_send(self.board, conn=chan.conn, cid=chan.cid, data=data))
        if not more:
            with self._lock:
                # The board's L2CAP_SEND_READY for this send can come in the same read as the
                # call's answer, and the dispatcher thread then handles it before this thread
                # runs again: stalled set now would never clear (a server that batches the
                # board's output, ser2net's default chardelay, did that every time).
                chan.stalled = chan.ready_events == ready_before
        return more

    def recv_into(self, chan: Channel, buf: Any) -> int:
        """Move received bytes into the writable buffer ``buf``; the count moved."""
        target = memoryview(buf).cast("B")
        with self._lock:
            n = min(len(target), len(chan.rx))
            target[:n] = chan.rx[:n]
            del chan.rx[:n]
        return n

    def disconnect(self, chan: Channel) -> None:
        """Close the channel (blocking call); ``chan.open`` turns False on its event."""
        try:
            calls.l2cap_disconnect(self.board, conn=chan.conn, cid=chan.cid)
        except BoardError:
            if chan.open:
                raise

    # -- events ----------------------------------------------------------------------------------

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _on_event(self, ev: Any) -> None:
        code, f = ev.code, ev.typed
        conn = int(f.conn)
        if code == P.EV_L2CAP_CONNECT:
            chan = Channel(conn, int(f.cid), int(f.psm), int(f.our_mtu), int(f.peer_mtu))
            with self._lock:
                self.channels[(conn, chan.cid)] = chan
                pending = self._connecting.pop((conn, chan.psm), None)
                if pending is None:
                    self._accepted.setdefault(conn, deque()).append(chan)
            if pending is not None and not pending[0].done():
                pending[0].set_result(chan)
        elif code == P.EV_L2CAP_DISCONNECT:
            cid, psm, status = int(f.cid), int(f.psm), int(f.status)
            with self._lock:
                chan = self.channels.pop((conn, cid), None)
                pending = None if chan is not None else self._connecting.get((conn, psm))
            if chan is not None:
                chan.status = status
                chan.open = False
            elif pending is not None:
                fut, mtu, deadline = pending
                if status and time.monotonic() < deadline:
                    time.sleep(CONNECT_RETRY_GAP_S)
                    self._call_connect(conn, psm, mtu, fut)
                    return
                with self._lock:
                    self._connecting.pop((conn, psm), None)
                if not fut.done():
                    fut.set_exception(ChannelRefused(status, psm))
        elif code == P.EV_L2CAP_RECV:
            with self._lock:
                chan = self.channels.get((conn, int(f.cid)))
                if chan is not None:
                    chan.rx += f.data
        elif code == P.EV_L2CAP_SEND_READY:
            with self._lock:
                chan = self.channels.get((conn, int(f.cid)))
                if chan is not None:
                    chan.ready_events += 1
                    chan.stalled = False
        else:   # the connection ended: its channels with it
            with self._lock:
                ended = [self.channels.pop(k) for k in [k for k in self.channels if k[0] == conn]]
                self._accepted.pop(conn, None)
                pending = [(k, self._connecting.pop(k)) for k in [k for k in self._connecting if k[0] == conn]]
            for chan in ended:
                chan.open = False
            for (_, psm), (fut, _, _) in pending:
                if not fut.done():
                    fut.set_exception(ChannelRefused(-1, psm))
        self._changed()
