"""RPC client: one board, many calls in flight, ordered event delivery.

Threads per board:
  reader      reads the transport, decodes frames and CBOR, resolves pending calls by id, sweeps
              call deadlines, and hands each chunk's events to the dispatcher in one queue put.
              It never runs user code (except the done-callbacks of call_nowait() futures).
  dispatcher  delivers events in wire order to listeners, then tells lost listeners about
              resets and unplugs. Listeners may call board.call() (they never read the port).
              (blebridge.rpc.dispatch)
  callers     on ports with a descriptor (local serial ports, pseudo-terminals: sim boards), a
              thread inside board.call() reads the port itself while it waits, holding the
              read token (blebridge.rpc.read_token: the design and why). Other ports
              (socket://, rfc2217://, loop://) keep the reader thread as the only reader.

Invariants:
  - The host never drops an event: the dispatcher queue is unbounded; events reach it in wire
    order whichever thread read them.
  - Every pending call ends: with its result, a BoardError, CallTimeout at its deadline,
    BoardReset when the board reboots (BOOT with a new boot_id), or BoardLost when the link
    goes away or the board is closed. A request or response lost on the link is a CallTimeout;
    a response arriving after that (late) or twice (duplicate) is ignored and counted.
  - Event frames lost on the link are never silent: their sequence numbers (blebridge.linkseq)
    show the gap, which is counted and handed to gap listeners in wire order with the events
    (a warning is logged per gap when no gap listener is registered).
  - Writes are serialised by one lock; a frame is written whole.
  - Done-callbacks of call_nowait() futures run on whichever thread reads the port; they
    must not call board.call() (it raises RuntimeError there instead of deadlocking).

Contract for the API layers: docs/design.md, "Python host RPC client contract". Wire format
(Event, BoardInfo, requests): blebridge.wire; port reads and writes: blebridge.transport.reader.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import errno
import itertools
import logging
import math
import os
import select
import threading
import time
from typing import Any, Callable, Optional

import cbor2

from .. import protocol as P
from ..errors import BlebridgeError, BoardError, BoardLost, BoardReset, CallTimeout
from ..framing import FrameDecoder
from ..linkseq import EVENT_SEQ_MOD, EventSeq, LinkGap
from ..transport import describe, open_transport
from ..transport.reader import READ_POLL_S, fd_of, make_reader, read_into, write_fd
from ..wire import BoardInfo, Event, check_version, encode_request, make_event
from .dispatch import Q_CALL, Q_EVENTS, Q_GAP, Q_LOST, Q_RESET, Dispatcher
from .read_token import ReadToken, Waiter

log = logging.getLogger("blebridge.rpc")

#: Default timeout of one call (s), from the schema.
DEFAULT_TIMEOUT_S = P.CONSTANTS["defaults"]["CALL_TIMEOUT_MS"] / 1000
#: Timeout of the handshake on open (s). A board answers in milliseconds once running; this
#: leaves time for a board that is still booting or printing boot text.
HANDSHAKE_TIMEOUT_S = 5.0
#: A handshake is repeated (it changes nothing on the board) when one attempt gets no answer
#: within this long (s): a board answers in milliseconds, so a silent attempt means the request
#: or its response was lost on a lossy link. The attempts together stay within the timeout.
HANDSHAKE_ATTEMPT_S = 1.0
#: How often the reader fails calls past their deadline (s). call() itself waits exactly its
#: timeout; this bounds how late call_nowait()/acall() futures learn of theirs.
SWEEP_PERIOD_S = 0.05
#: How long close() waits for the reader thread to notice (s).
_JOIN_TIMEOUT_S = 2.0
#: Request ids of timed-out calls remembered to tell a late response (counted late_responses)
#: from a duplicate or unknown one (unmatched_responses).
_LATE_IDS_KEPT = 1024
#: errno of a write that means the port itself is gone (unplugged, the board process ended).
_PORT_GONE_ERRNOS = frozenset({errno.EIO, errno.ENXIO, errno.ENODEV, errno.EPIPE, errno.ECONNRESET})
_ID_MODULO = 1 << 32

_MSG_RSP, _MSG_EVT, _MSG_EVT_BATCH = P.MSG_RSP, P.MSG_EVT, P.MSG_EVT_BATCH
_EV_BOOT = P.EV_BOOT


class _Pending:
    __slots__ = ("future", "method", "deadline", "timeout")

    def __init__(self, future: Any, method: str, deadline: float, timeout: float) -> None:
        self.future = future              # concurrent.futures.Future, or a Waiter for call()
        self.method = method
        self.deadline = deadline
        self.timeout = timeout


def _fail(fut: Any, exc: BaseException) -> None:
    if not fut.done():
        try:
            fut.set_exception(exc)
        except concurrent.futures.InvalidStateError:   # cancelled meanwhile
            pass


class Board:
    """A board running blebridge firmware, reached over one transport.

    Normally made by :func:`open_board`. ``Board(transport)`` wraps a transport that is already
    open (tests, benchmarks); without ``spec`` it cannot :meth:`reopen`.
    """

    def __init__(self, transport: Any, *, spec: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT_S,
                 transport_kw: Optional[dict] = None) -> None:
        self.spec = spec or describe(transport)
        self._reopen_spec = spec
        self._transport_kw = dict(transport_kw or {})
        self.timeout = timeout
        self.info: Optional[BoardInfo] = None
        self._ser: Any = None
        self._token: Optional[ReadToken] = None   # set while a descriptor-backed port is attached
        self._decoder = FrameDecoder()
        self._wlock = threading.Lock()     # one writer at a time; a frame is written whole
        self._plock = threading.Lock()     # registering vs failing all pending calls; never held over I/O
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._next_sweep = 0.0             # monotonic s; read and written by the token holder only
        self._lost: Optional[BoardLost] = None
        self._closed = False
        self._stopping = False
        self._reader: Optional[threading.Thread] = None
        self._reopen_lock = threading.RLock()
        self._counters = {
            "frames_tx": 0, "bad_messages": 0, "unmatched_responses": 0, "late_responses": 0,
            "calls_timed_out": 0, "events": 0, "listener_errors": 0, "resets": 0, "links_lost": 0,
        }
        self._seq = EventSeq()             # read and written by the token holder only
        self._timed_out_ids: "collections.OrderedDict[int, None]" = collections.OrderedDict()
        self._dispatch = Dispatcher(self.spec, self._counters, self._after_reset)
        self._q = self._dispatch.queue     # whoever reads the port puts here (one put per chunk)
        self._attach(transport)

    # -- lifecycle -------------------------------------------------------------------------

    def _attach(self, transport: Any) -> None:
        self._ser = transport
        self._decoder.reset()
        self._seq.unsync()
        self._lost = None
        self._stopping = False
        self._next_sweep = time.monotonic() + SWEEP_PERIOD_S
        # A leading delimiter ends whatever half frame the board may hold from a previous host.
        with self._wlock:
            transport.write(b"\x00")
        fd, abort = fd_of(transport)
        if fd is not None and abort is not None:
            token = ReadToken(fd, abort)
            self._token = token
            reader = threading.Thread(target=self._read_loop_fd, args=(token,), daemon=True,
                                      name=f"blebridge-reader {self.spec}")
        else:
            self._token = None
            reader = threading.Thread(target=self._read_loop, args=(transport,), daemon=True,
                                      name=f"blebridge-reader {self.spec}")
        self._reader = reader
        reader.start()

    def _detach(self, exc: BoardLost) -> None:
        """Stop whoever reads, close the transport, fail every pending call with ``exc``."""
        ser, self._ser = self._ser, None
        token, self._token = self._token, None
        self._stopping = True
        if token is not None:
            token.shut()
        if ser is not None:
            cancel = getattr(ser, "cancel_read", None)
            if cancel is not None:
                try:
                    cancel()
                except Exception:     # the port may already be gone; closing is what matters
                    pass
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(_JOIN_TIMEOUT_S)
        self._reader = None
        if token is not None:
            self._wait_token_free(token)
        if ser is not None:
            # Not under a writer: a descriptor closed mid-write could be reused by another file.
            wrote = self._wlock.acquire(True, _JOIN_TIMEOUT_S)
            try:
                ser.close()
            except Exception as e:   # closing a dead port can fail; the board is gone either way
                log.debug("%s: close: %s", self.spec, e)
            finally:
                if wrote:
                    self._wlock.release()
        if token is not None:
            token.close_pipe()
        self._fail_all(exc)

    def _wait_token_free(self, token: ReadToken) -> None:
        """Wait (bounded) until no caller reads the port, so it is not closed under a read.
        A caller holding the token sees ``_stopping`` at its next wake (the abort pipe) and
        hands the token on; queued callers see their call end or the token closed."""
        deadline = time.monotonic() + _JOIN_TIMEOUT_S
        while time.monotonic() < deadline:
            with token.mutex:
                if token.holder == 0 or token.holder == threading.get_ident():
                    token.holder = threading.get_ident()
                    return
            time.sleep(0.001)
        log.debug("%s: a caller still held the read token at close", self.spec)

    def close(self) -> None:
        """Close the board: pending calls fail with BoardLost, threads end, an owned sim stops."""
        with self._reopen_lock:
            if self._closed:
                return
            self._closed = True
            self._lost = BoardLost(f"{self.spec}: board closed")
            self._detach(self._lost)
        self._dispatch.stop(_JOIN_TIMEOUT_S)

    def reopen(self, *, handshake: bool = True, timeout: Optional[float] = None) -> Optional[BoardInfo]:
        """Reconnect (resolving the spec again: sim boards restart, ``auto`` rescans) and
        handshake again. Listeners stay registered. Returns the new BoardInfo."""
        if self._reopen_spec is None:
            raise BlebridgeError(f"{self.spec}: this board was made from an open transport; it cannot reopen")
        with self._reopen_lock:
            if self._closed:
                raise BoardLost(f"{self.spec}: board closed")
            self._detach(BoardLost(f"{self.spec}: reopening"))
            transport = open_transport(self._reopen_spec, **self._transport_kw)
            self._attach(transport)
        if handshake:
            return self.handshake(timeout=timeout)
        return None

    def __enter__(self) -> "Board":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("lost" if self._lost else "open")
        return f"<Board {self.spec} {state}>"

    @property
    def is_lost(self) -> bool:
        """True once the link is gone (unplugged, closed) until :meth:`reopen`."""
        return self._lost is not None

    @property
    def transport(self) -> Any:
        return self._ser

    # -- calls -----------------------------------------------------------------------------

    def _new_request(self, method: str, args: tuple) -> tuple[int, bytes]:
        """A fresh request id and the request's frame; argument errors raise here."""
        rid = next(self._ids) % _ID_MODULO
        return rid, encode_request(rid, method, args)

    def _submit(self, rid: int, frame: bytes, fut: Any, method: str, t: float) -> None:
        """Register ``fut`` under ``rid`` and write ``frame``; link failures are set on ``fut``."""
        with self._plock:
            lost = self._lost
            if lost is None:
                self._pending[rid] = _Pending(fut, method, time.monotonic() + t, t)
        if lost is not None:
            fut.set_exception(type(lost)(f"{method}: {lost}"))
            return
        try:
            with self._wlock:
                token = self._token
                if token is not None:
                    write_fd(token.fd, frame, token.is_closed)
                else:
                    self._ser.write(frame)
                self._counters["frames_tx"] += 1
        except Exception as exc:
            if getattr(exc, "errno", None) in _PORT_GONE_ERRNOS and not self._stopping:
                # The port is gone (the reader may not have seen it yet): every pending call,
                # this one included, fails with why.
                self._link_lost(exc)
            if self._pending.pop(rid, None) is not None:
                _fail(fut, BoardLost(f"{self.spec}: {method}: write failed ({exc})"))

    def call_nowait(self, method: str, *args: Any, timeout: Optional[float] = None) -> concurrent.futures.Future:
        """Send a request; return a Future for its result. Never waits for the board.

        Argument errors (unknown method, wrong count, too long) raise at once; everything the
        link or the board reports arrives through the Future. Its done-callbacks run on the
        thread that reads the port (the reader, or a thread inside call()): they must not call
        ``board.call()``.
        """
        t = self.timeout if timeout is None else timeout
        fut: concurrent.futures.Future = concurrent.futures.Future()
        rid, frame = self._new_request(method, args)
        self._submit(rid, frame, fut, method, t)
        return fut

    def call(self, method: str, *args: Any, timeout: Optional[float] = None) -> Any:
        """Call ``method`` and wait for its result (s of ``timeout``, default self.timeout)."""
        me = threading.get_ident()
        reader = self._reader
        if reader is not None and reader.ident == me:
            raise RuntimeError("board.call() from the reader thread would deadlock")
        token = self._token
        if token is not None and token.holder == me:
            raise RuntimeError("board.call() from a callback run while this thread reads the port "
                               "would deadlock")
        t = self.timeout if timeout is None else timeout
        rid, frame = self._new_request(method, args)
        w = Waiter()
        deadline = time.monotonic() + t
        if token is None:
            self._submit(rid, frame, w, method, t)
        else:
            # The token is taken before the request goes out, so the reader thread cannot be
            # the one to read the response (which would cost a thread wake-up to hand it over).
            holding = token.take(w)
            self._submit(rid, frame, w, method, t)
            self._read_for(token, w, deadline, holding)
        while not w.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not w.wait(remaining):
                if self._pending.pop(rid, None) is not None:
                    self._counters["calls_timed_out"] += 1
                    self._note_timed_out(rid)
                    raise CallTimeout(method, t)
                # Popped by a resolver in this instant: its result is being set.
                while not w.done():
                    w.wait(SWEEP_PERIOD_S)
        return w.result()

    def _read_for(self, token: ReadToken, w: Waiter, deadline: float, holding: bool) -> None:
        """Read the port on this thread until ``w``'s call ends or ``deadline`` passes, holding
        the read token (now, or once it is handed over: ``w`` was queued by ``token.take``);
        other calls' responses and events met meanwhile are handled exactly as the reader
        thread handles them. Returns without the token."""
        if not holding:
            while True:
                remaining = deadline - time.monotonic()
                woke = remaining > 0 and w.wait(remaining)
                if token.after_wait(w, leave=not woke or w.done()):
                    break                       # handed to us
                if not woke or w.done() or token.closed:
                    return
        fd, abort = token.fd, token.abort_r
        poll = token.caller_poll.poll
        try:
            while not w.done() and not token.closed:
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0:
                    return
                if now >= self._next_sweep:
                    self._next_sweep = now + SWEEP_PERIOD_S
                    if self._pending:
                        self._sweep(now)
                ready = poll(math.ceil(min(remaining, SWEEP_PERIOD_S) * 1000))
                if not ready:
                    continue
                readable = False
                for rfd, mask in ready:
                    if mask & select.POLLNVAL:
                        raise OSError(errno.EBADF, "port descriptor closed")
                    if rfd == abort:
                        os.read(abort, 1000)    # close() or reopen(): token.closed is set
                    else:
                        readable = True
                if not readable:
                    continue
                try:
                    data = read_into(fd, token.rx_buf)
                except BlockingIOError:
                    continue
                if not data:
                    raise EOFError("end of file on the port")
                self._on_chunk(data)
        except Exception as exc:      # OSError (EIO on hangup), EOFError
            if not token.closed:
                self._link_lost(exc)
        finally:
            token.release()

    async def acall(self, method: str, *args: Any, timeout: Optional[float] = None) -> Any:
        """Call from asyncio: the thread that reads the port wakes the loop with call_soon_threadsafe."""
        loop = asyncio.get_running_loop()
        afut = loop.create_future()
        cfut = self.call_nowait(method, *args, timeout=timeout)

        def transfer(f: concurrent.futures.Future) -> None:
            if afut.done():
                return
            exc = f.exception()
            if exc is not None:
                afut.set_exception(exc)
            else:
                afut.set_result(f.result())

        def on_done(f: concurrent.futures.Future) -> None:
            try:
                loop.call_soon_threadsafe(transfer, f)
            except RuntimeError:         # the loop is closed; nobody is waiting any more
                pass

        cfut.add_done_callback(on_done)
        try:
            return await afut
        except asyncio.CancelledError:
            cfut.cancel()
            self._forget(cfut)
            raise

    def _forget(self, fut: concurrent.futures.Future) -> None:
        for rid, p in list(self._pending.items()):
            if p.future is fut:
                self._pending.pop(rid, None)
                return

    def _fail_all(self, exc: BoardLost) -> None:
        with self._plock:
            pending, self._pending = self._pending, {}
        for p in pending.values():
            _fail(p.future, type(exc)(f"{p.method}: {exc}"))

    def _sweep(self, now: float) -> None:
        expired = [rid for rid, p in list(self._pending.items()) if p.deadline <= now]
        for rid in expired:
            p = self._pending.pop(rid, None)
            if p is not None:
                self._counters["calls_timed_out"] += 1
                self._note_timed_out(rid)
                _fail(p.future, CallTimeout(p.method, p.timeout))

    def _note_timed_out(self, rid: int) -> None:
        ids = self._timed_out_ids
        ids[rid] = None
        if len(ids) > _LATE_IDS_KEPT:
            try:
                ids.popitem(last=False)
            except KeyError:          # emptied by another thread meanwhile
                pass

    # -- handshake and diagnostics -----------------------------------------------------------

    def handshake(self, timeout: Optional[float] = None) -> BoardInfo:
        """Exchange versions; sets and returns :attr:`info`. Raises VersionMismatch."""
        t = HANDSHAKE_TIMEOUT_S if timeout is None else timeout
        deadline = time.monotonic() + t
        while True:
            left = deadline - time.monotonic()
            try:
                result = self.call("handshake", P.PROTO_MAJOR, P.PROTO_MINOR,
                                   timeout=max(min(HANDSHAKE_ATTEMPT_S, left), 0.001))
                break
            except CallTimeout:
                if deadline - time.monotonic() <= 0:
                    raise CallTimeout("handshake", t) from None
        info = BoardInfo.from_handshake(result)
        check_version(info, self.spec)
        self.info = info
        return info

    def host_counters(self) -> dict[str, int]:
        """Host-side counters: framing (frames_rx, crc_errors, garbage_bytes, oversize), RPC
        (frames_tx, bad_messages, unmatched_responses, late_responses, calls_timed_out, events,
        ...) and event frames lost on the link (event_frames, link_gaps, link_frames_lost)."""
        d = self._decoder
        out = {"frames_rx": d.frames, "crc_errors": d.crc_errors, "garbage_bytes": d.garbage_bytes,
               "oversize": d.oversize}
        out.update(self._counters)
        seq = self._seq
        out["event_frames"] = seq.frames
        out["link_gaps"] = seq.gaps
        out["link_frames_lost"] = seq.frames_lost
        out["calls_pending"] = len(self._pending)
        out["event_queue_depth"] = self._q.qsize()
        return out

    def diagnostics(self, timeout: Optional[float] = None) -> dict[str, int]:
        """The board's counters (schema method ``diagnostics``) and the host's, prefixed ``host_``."""
        result = self.call("diagnostics", timeout=timeout)
        out = dict(result) if isinstance(result, dict) else {"board_result": result}
        out.update({f"host_{k}": v for k, v in self.host_counters().items()})
        return out

    # -- listeners -------------------------------------------------------------------------

    def add_event_listener(self, fn: Callable[[Event], Any]) -> None:
        """Call ``fn(event)`` for every event, in order, on this board's dispatcher thread."""
        self._dispatch.add_event_listener(fn)

    def remove_event_listener(self, fn: Callable[[Event], Any]) -> None:
        self._dispatch.remove_event_listener(fn)

    def add_lost_listener(self, fn: Callable[[BaseException], Any]) -> None:
        """Call ``fn(exc)`` (BoardReset or BoardLost) when the board resets or is unplugged."""
        self._dispatch.add_lost_listener(fn)

    def remove_lost_listener(self, fn: Callable[[BaseException], Any]) -> None:
        self._dispatch.remove_lost_listener(fn)

    def add_gap_listener(self, fn: Callable[[LinkGap], Any]) -> None:
        """Call ``fn(gap)`` on the dispatcher thread for every gap in the event frames (frames
        lost on the link), after the events received before it and before those after it.
        While a gap listener is registered the board logs no warning of its own."""
        self._dispatch.add_gap_listener(fn)

    def remove_gap_listener(self, fn: Callable[[LinkGap], Any]) -> None:
        self._dispatch.remove_gap_listener(fn)

    # -- reading: the reader thread, or a caller holding the read token -----------------------

    def _read_loop_fd(self, token: ReadToken) -> None:
        """Reader thread of a descriptor-backed port: reads while no caller holds the token."""
        fd, abort, wake = token.fd, token.abort_r, token.wake_r
        rlist = [fd, wake, abort]
        while not token.closed and self._lost is None:
            if not token.reader_may_select(READ_POLL_S):
                continue
            try:
                ready = select.select(rlist, [], [], READ_POLL_S)[0]
            except OSError as exc:            # the port was closed under us
                if not token.closed:
                    self._link_lost(exc)
                return
            if wake in ready:
                token.drain_wake()
            if not token.reader_take():
                continue                      # a caller reads now; park until it is done
            try:
                if abort in ready:
                    os.read(abort, 1000)
                if fd in ready:
                    try:
                        data = read_into(fd, token.rx_buf)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        # A tty (VMIN=0) reads b"" when empty: a caller may have read what
                        # select() saw. Only still "readable" and still empty is end of file.
                        if select.select([fd], [], [], 0)[0]:
                            data = read_into(fd, token.rx_buf)
                            if not data:
                                raise EOFError("end of file on the port")
                    if data:
                        self._on_chunk(data)
                now = time.monotonic()
                if now >= self._next_sweep:
                    self._next_sweep = now + SWEEP_PERIOD_S
                    if self._pending:
                        self._sweep(now)
            except Exception as exc:      # OSError (EIO on hangup), EOFError
                if not token.closed:
                    self._link_lost(exc)
                return
            finally:
                token.release(by_reader=True)

    def _read_loop(self, ser: Any) -> None:
        """Reader thread of other ports (socket://, rfc2217://, loop://): the only reader."""
        read = make_reader(ser, READ_POLL_S)
        next_sweep = time.monotonic() + SWEEP_PERIOD_S
        try:
            while not self._stopping:
                data = read()
                if data:
                    self._on_chunk(data)
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + SWEEP_PERIOD_S
                    if self._pending:
                        self._sweep(now)
        except Exception as exc:      # SerialException, OSError (EIO on hangup), EOFError
            if self._stopping:
                return
            self._link_lost(exc)

    def _on_chunk(self, data: bytes) -> None:
        """Decode one chunk read from the port: resolve calls by id, queue the events in one put.
        Runs only on the thread holding the right to read (so chunks are handled in order)."""
        frames = self._decoder.feed(data)
        if not frames:
            return
        events: list[Event] = []
        loads = cbor2.loads
        for f in frames:
            try:
                msg = loads(f)
                # Every message is an array [kind, ...]: a map or a string indexes too, but
                # is not ours (b"\x01..." would even read as a response).
                kind = msg[0] if type(msg) is list else None
            except Exception:
                self._bad_message(f)
                continue
            if kind == _MSG_RSP:
                gap = self._on_response(msg)
                if gap is not None:
                    events = self._on_gap(gap, events)
            elif kind == _MSG_EVT_BATCH or kind == _MSG_EVT:
                try:
                    seq = msg[1]
                    if kind == _MSG_EVT:
                        got = [make_event(msg[2], tuple(msg[3:]))]
                    else:
                        got = [make_event(e[0], tuple(e[1:])) for e in msg[2:]]
                    if type(seq) is not int or seq < 0:
                        raise TypeError("event frame without a sequence number")
                except (TypeError, IndexError, KeyError):
                    self._bad_message(f)
                    continue
                boot = False
                for ev in got:
                    if ev.code == _EV_BOOT:
                        boot = True
                gap = self._seq.frame(seq, boot)
                if gap is not None:
                    events = self._on_gap(gap, events)
                if boot:
                    for ev in got:
                        if ev.code == _EV_BOOT:
                            events = self._on_boot(ev, events)
                        events.append(ev)
                else:
                    events += got
            else:
                self._bad_message(f)
        if events:
            self._counters["events"] += len(events)
            self._q.put((Q_EVENTS, events))

    def _on_gap(self, gap: LinkGap, events: list[Event]) -> list[Event]:
        """Event frames were lost: the events before the gap go out, then the gap."""
        if events:
            self._counters["events"] += len(events)
            self._q.put((Q_EVENTS, events))
        self._q.put((Q_GAP, gap))
        if gap.frames_lost >= EVENT_SEQ_MOD // 2:
            # The count ran backwards: more likely a board that restarted (its count starts
            # at 0 again) and whose BOOT frame was lost than half the sequence space lost.
            self._q.put((Q_CALL, self._check_restart))
        return []

    def _check_restart(self) -> None:
        """On the dispatcher thread: ask the board its boot id; a new one is a reset whose BOOT
        event the link lost, handled as a reset (pending calls fail with BoardReset, the lost
        listeners hear of it, the host handshakes again)."""
        old = self.info
        if old is None or self._closed or self._lost is not None:
            return
        try:
            info = self.handshake()
        except BlebridgeError as exc:
            log.debug("%s: boot id check after a backwards gap failed: %s", self.spec, exc)
            return
        if info.boot_id == old.boot_id:
            return
        exc = BoardReset(f"{self.spec}: the board restarted (boot id {old.boot_id} -> "
                         f"{info.boot_id}; its BOOT event was lost on the link)")
        self._counters["resets"] += 1
        self._fail_all(exc)
        self._q.put((Q_RESET, exc))

    def _bad_message(self, frame: bytes) -> None:
        self._counters["bad_messages"] += 1
        log.debug("%s: not a blebridge message: %s", self.spec, frame[:64].hex())

    def _on_response(self, msg: list) -> Optional[LinkGap]:
        """Resolve the call; a gap when a handshake's event_seq shows event frames lost."""
        if len(msg) < 4:
            self._counters["bad_messages"] += 1
            return None
        _, rid, status, result = msg[:4]
        p = self._pending.pop(rid, None) if isinstance(rid, int) else None
        if p is None:
            if isinstance(rid, int) and self._timed_out_ids.pop(rid, 0) is None:
                # The answer to a call that already raised CallTimeout (the link delayed it).
                self._counters["late_responses"] += 1
                log.debug("%s: late response: id=%r status=%r", self.spec, rid, status)
                return None
            # A duplicate, an unknown id, or [1, null, MALFORMED, null] for a frame the board
            # could not parse.
            self._counters["unmatched_responses"] += 1
            log.debug("%s: response to no pending call: id=%r status=%r", self.spec, rid, status)
            return None
        gap = None
        if p.method == "handshake" and status == 0 and isinstance(result, dict):
            # Read here, in stream order: every event frame numbered below event_seq came
            # before this response, every later one after it.
            gap = self._seq.sync(result.get("event_seq"))
        fut = p.future
        if fut.done():
            return gap
        try:
            if status == 0:
                fut.set_result(result)
            else:
                fut.set_exception(BoardError(status, p.method))
        except concurrent.futures.InvalidStateError:
            pass
        return gap

    def _on_boot(self, ev: Event, events: list[Event]) -> list[Event]:
        """BOOT seen: if its boot_id differs from the handshake's, the board was reset."""
        info = self.info
        boot_id = ev.fields[0] if ev.fields else None
        if info is None or boot_id == info.boot_id:
            return events
        exc = BoardReset(f"{self.spec}: the board restarted (boot id {info.boot_id} -> {boot_id})")
        self._counters["resets"] += 1
        self._fail_all(exc)
        # Events before the BOOT go out first, then the reset, then the BOOT event itself.
        if events:
            self._counters["events"] += len(events)
            self._q.put((Q_EVENTS, events))
        self._q.put((Q_RESET, exc))
        return []

    def _link_lost(self, cause: BaseException) -> None:
        if self._lost is not None:        # seen already: skip the wait for a reason below
            return
        # A transport that knows why the link ended (a sim board's process was killed) says so.
        explain = getattr(self._ser, "loss_reason", None)
        why = explain() if explain is not None else None
        exc = BoardLost(f"{self.spec}: link lost ({why or cause}); call reopen() after reconnecting")
        with self._plock:
            if self._lost is not None:    # seen already (by the reader, or a failed write)
                return
            self._lost = exc
        self._counters["links_lost"] += 1
        self._fail_all(exc)
        self._q.put((Q_LOST, exc))

    def _after_reset(self) -> None:
        """On the dispatcher thread, once the lost listeners have heard of a reset: handshake
        again (so :attr:`info` has the new boot id)."""
        if not self._closed and self._lost is None:
            try:
                self.handshake()
            except BlebridgeError as e:
                log.warning("%s: handshake after reset failed: %s", self.spec, e)


def open_board(spec: str, timeout: float = DEFAULT_TIMEOUT_S, handshake: bool = True, **transport_kw: Any) -> Board:
    """Open the board at ``spec`` (see blebridge.transport for the grammar) and handshake.

    Raises PortOpenError (cannot open), VersionMismatch (protocol major differs),
    CallTimeout (nothing answers the handshake: not our firmware, or not running).
    """
    transport = open_transport(spec, **transport_kw)
    board = Board(transport, spec=spec, timeout=timeout, transport_kw=transport_kw)
    if handshake:
        try:
            board.handshake()
        except BaseException:
            board.close()
            raise
    return board
