"""RPC client: one board, many calls in flight, ordered event delivery.

Threads per board:
  reader      reads the transport, decodes frames and CBOR, resolves pending calls by id, sweeps
              call deadlines, and hands each chunk's events to the dispatcher in one queue put.
              It never runs user code (except the done-callbacks of call_nowait() futures).
  dispatcher  delivers events in wire order to listeners, then tells lost listeners about
              resets and unplugs. Listeners may call board.call() (they never read the port).
  callers     on ports with a descriptor (local serial ports, pseudo-terminals: sim boards), a
              thread inside board.call() reads the port itself while it waits; see below.

Caller reads (descriptor-backed ports). Handing a response from the reader thread to a waiting
caller costs a thread wake-up (futex) and a GIL hand-off, which doubled a round trip. So whoever
reads the port holds the *read token* (_ReadToken), and a caller of board.call() takes it:
  - It takes the token *before* writing its request (so the reader cannot be the one to see
    the response), writes, then polls and reads the port on its own thread until its own
    response arrives, and hands the token on: to the next queued caller whose call has not
    ended, else back to the reader thread.
  - Everything it reads goes through the same function as the reader's (_on_chunk): responses
    to other calls resolve their futures, events go on the dispatcher queue in one put per
    chunk, BOOT with a new boot id fails every pending call. Only the token holder reads and
    hand-offs go through one mutex, so chunks are handled one at a time in wire order.
  - The reader thread waits in select() *without* the token and takes it only to read and
    handle one chunk; a caller finding the token free takes it at once and writes a byte to
    the reader's wake pipe, so the reader leaves select() while the board is still working
    (instead of waking with the caller on the response). A caller finding it held queues;
    concurrent callers are served first come first served, each reading until its own
    response (meanwhile resolving the others' calls, which then need no token).
  - After a caller frees the token the reader stays parked for READER_RESUME_S (1 ms), so
    back-to-back calls find it free and wake no thread; after a long hold it resumes at once.
    Events and call_nowait() results arriving with no caller waiting are read at most that
    much later.
  - A caller reads until its deadline (then hands the token back and raises CallTimeout),
    sweeps the other calls' deadlines as the reader would, and on end of file or EIO fails
    every pending call (BoardLost) itself. close()/reopen() mark the token closed and wake
    its holder through pyserial's cancel_read() pipe, then wait for the token before closing
    the port, so no thread reads a closed (or reused) descriptor.
  - board.call() waits on a bare lock per call (_Waiter), not a concurrent.futures.Future
    (whose Condition costs more per wait); call_nowait()/acall() keep Futures.
  - The request is written with one os.write() (pyserial's write() adds a select() per call).
Other ports (socket://, rfc2217://, loop://) keep the reader thread as the only reader.

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

Contract for the API layers: docs/design.md, "Python host RPC client contract".
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
import queue
import select
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional

import cbor2

from . import protocol as P
from .errors import (BlebridgeError, BoardError, BoardLost, BoardReset, CallTimeout, ProtocolError,
                     VersionMismatch)
from .events import typed_event
from .framing import FrameDecoder, encode_frame
from .linkseq import EventSeq, LinkGap
from .transport import READ_POLL_S, describe, open_transport

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
#: How long the reader thread stays off the port after a caller of call() stops reading it
#: (s). A caller that comes within this time finds the token free and the reader parked, so
#: back-to-back calls cost no thread wake-ups; events and call_nowait() results arriving
#: after the last call() are read at most this much later.
READER_RESUME_S = 0.001
#: How long close() waits for the reader thread to notice (s).
_JOIN_TIMEOUT_S = 2.0
#: Request ids of timed-out calls remembered to tell a late response (counted late_responses)
#: from a duplicate or unknown one (unmatched_responses).
_LATE_IDS_KEPT = 1024
_READ_CHUNK = 65536
#: errno of a write that means the port itself is gone (unplugged, the board process ended).
_PORT_GONE_ERRNOS = frozenset({errno.EIO, errno.ENXIO, errno.ENODEV, errno.EPIPE, errno.ECONNRESET})


def _read_into(fd: int, buf: bytearray) -> bytes:
    """``os.read(fd, len(buf))`` through a buffer the caller reuses: the bytes that arrived.

    os.read allocates the whole size asked for and shrinks it to what was read: with 64 KiB
    asked and a few hundred bytes read per chunk, the shrunk blocks fragment the C heap, and
    RSS kept growing (make soak: +13.5 % in 10 min, the heap's free space growing with it).
    Raises BlockingIOError as os.read does; b"" at end of file.
    """
    n = os.readv(fd, (buf,))
    return bytes(memoryview(buf)[:n]) if n else b""


_ID_MODULO = 1 << 32

_EVENT_NAMES = {code: ev.name for code, ev in P.EVENTS.items()}
_MSG_RSP, _MSG_EVT, _MSG_EVT_BATCH = P.MSG_RSP, P.MSG_EVT, P.MSG_EVT_BATCH
_EV_BOOT = P.EV_BOOT


class Event(NamedTuple):
    """One board->host event. ``fields`` are in schema order; bytes fields are ``bytes``."""

    code: int
    name: str
    fields: tuple

    @property
    def typed(self) -> Any:
        """The fields as the event's NamedTuple (blebridge.events, e.g. GattsWrite), built on each
        access; ProtocolError if they do not match the schema."""
        return typed_event(self.code, self.fields)


_tuple_new = tuple.__new__     # builds Event without NamedTuple.__new__'s Python frame (hot path)


def _make_event(code: Any, fields: tuple) -> Event:
    name = _EVENT_NAMES.get(code)
    if name is None:
        name = f"EVENT_{code}"
    return _tuple_new(Event, (code, name, fields))


@dataclass(frozen=True)
class BoardInfo:
    """What the handshake says about the board and its firmware."""

    proto: tuple[int, int]
    fw_version: str
    fw_build: str
    board: str
    caps: dict = field(default_factory=dict)
    addr_type: int = 0
    addr: bytes = b""
    boot_id: int = 0
    port: str = ""

    @classmethod
    def from_handshake(cls, result: Any) -> "BoardInfo":
        if not isinstance(result, dict):
            raise ProtocolError(f"handshake: expected a map, got {type(result).__name__}")
        try:
            proto = result["proto"]
            return cls(
                proto=(int(proto[0]), int(proto[1])),
                fw_version=str(result.get("fw_version", "")),
                fw_build=str(result.get("fw_build", "")),
                board=str(result.get("board", "")),
                caps=dict(result.get("caps") or {}),
                addr_type=int(result.get("addr_type", 0)),
                addr=bytes(result.get("addr") or b""),
                boot_id=int(result.get("boot_id", 0)),
                port=str(result.get("port", "")),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ProtocolError(f"handshake: malformed result ({exc})") from exc

    @property
    def addr_str(self) -> str:
        """Radio address as usually written (MSB first, colon separated)."""
        return ":".join(f"{b:02X}" for b in reversed(self.addr))


def _fix_command(spec: str, port_name: str) -> str:
    if spec.startswith("sim:") or port_name == "sim":
        return "make firmware"
    return f"blebridge flash --port {spec}" if spec else "blebridge flash"


def check_version(info: BoardInfo, spec: str) -> None:
    """Raise VersionMismatch if the firmware's protocol major differs from ours."""
    if info.proto[0] != P.PROTO_MAJOR:
        raise VersionMismatch((P.PROTO_MAJOR, P.PROTO_MINOR), info.proto,
                              _fix_command(spec, info.port), spec)
    if info.proto[1] < P.PROTO_MINOR:
        log.warning("%s: firmware speaks protocol %d.%d, host %d.%d: newer calls may fail "
                    "with UNKNOWN_METHOD; update with `%s`", spec, *info.proto, P.PROTO_MAJOR,
                    P.PROTO_MINOR, _fix_command(spec, info.port))


def encode_request(req_id: int, method: str, args: tuple) -> bytes:
    """Wire frame of one request, after checking the arguments against the schema."""
    m = P.METHODS.get(method)
    if m is None:
        raise ValueError(f"unknown method {method!r}")
    n = len(args)
    if n < m.argc_min or n > len(m.args):
        raise TypeError(f"{method}() takes {m.argc_min}..{len(m.args)} arguments ({n} given)")
    for f, a in zip(m.args, args):
        if f.max and f.type in ("bytes", "str") and a is not None:
            size = len(a.encode() if isinstance(a, str) else a)
            if size > f.max:
                raise BoardError(P.STATUS["VALUE_TOO_LARGE"], method,
                                 f"{f.name} is {size} bytes, the limit is {f.max}")
    payload = cbor2.dumps([P.MSG_REQ, req_id, m.id, *args])
    if len(payload) > P.LIMITS["MAX_FRAME"]:
        raise BoardError(P.STATUS["VALUE_TOO_LARGE"], method,
                         f"request is {len(payload)} bytes, MAX_FRAME is {P.LIMITS['MAX_FRAME']}")
    return encode_frame(payload)


def _fd_of(ser: Any) -> tuple[Optional[int], Optional[int]]:
    """(descriptor, pyserial abort pipe) of a local serial port or pseudo-terminal, else Nones."""
    inner = getattr(ser, "serial", ser)    # SimTransport wraps a pyserial port
    fd = getattr(inner, "fd", None)
    abort = getattr(inner, "pipe_abort_read_r", None)
    if isinstance(fd, int) and isinstance(abort, int):
        return fd, abort
    return None, None


def _make_reader(ser: Any, poll_s: float) -> Callable[[], bytes]:
    """A function returning the next chunk (b"" when idle); raises OSError when the link dies.

    Local serial ports and pseudo-terminals are read with select + os.read on the descriptor
    (one syscall pair per chunk, any size); other pyserial ports through their read().
    """
    fd, abort = _fd_of(ser)
    buf = bytearray(_READ_CHUNK)   # this reader's own (see _read_into)
    if fd is not None and abort is not None:
        def read_fd() -> bytes:
            ready, _, _ = select.select([fd, abort], [], [], poll_s)
            if not ready:
                return b""
            if abort in ready:
                os.read(abort, 1000)
                return b""
            try:
                data = _read_into(fd, buf)
            except BlockingIOError:
                return b""
            if not data:
                raise EOFError("end of file on the port")
            return data
        return read_fd
    sock = getattr(getattr(ser, "serial", ser), "_socket", None)
    if sock is not None:                    # socket:// — its in_waiting only says 0 or 1
        def read_sock() -> bytes:
            ready, _, _ = select.select([sock], [], [], poll_s)
            if not ready:
                return b""
            n = sock.recv_into(buf)   # not recv(): see _read_into
            data = bytes(memoryview(buf)[:n])
            if not data:
                raise EOFError("connection closed by the remote end")
            return data
        return read_sock

    def read_generic() -> bytes:
        return ser.read(ser.in_waiting or 1)
    return read_generic


class _Waiter:
    """What ``board.call()`` waits on: a bare lock instead of a concurrent.futures.Future.

    It is set at most once (whoever pops the call from ``Board._pending`` sets it) and signalled
    for two kinds of news: the result is in, or the read token was handed to this caller. One
    blocking ``acquire`` per wait; no Condition, no done-callbacks. Duck-types the part of the
    Future interface the resolvers use (done, set_result, set_exception).
    """

    __slots__ = ("_news", "_signalled", "_done", "_result", "_exc", "handoff", "ident")

    def __init__(self) -> None:
        self._news = threading.Lock()
        self._news.acquire()              # held = no news yet; released = news
        self._signalled = False
        self._done = False
        self._result: Any = None
        self._exc: Optional[BaseException] = None
        self.handoff = False              # the read token was handed to this caller
        self.ident = 0                    # thread waiting here (for the token's holder field)

    def done(self) -> bool:
        return self._done

    def set_result(self, result: Any) -> None:
        self._result = result
        self._done = True
        self.signal()

    def set_exception(self, exc: BaseException) -> None:
        self._exc = exc
        self._done = True
        self.signal()

    def signal(self) -> None:
        with _SIGNAL_MUTEX:               # release the lock once per wait, never twice
            if not self._signalled:
                self._signalled = True
                self._news.release()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for news; True if there was some."""
        if not self._news.acquire(True, timeout):
            return False
        with _SIGNAL_MUTEX:
            self._signalled = False       # the lock is held again: armed for the next news
        return True

    def result(self) -> Any:
        if self._exc is not None:
            raise self._exc
        return self._result


_SIGNAL_MUTEX = threading.Lock()


class _Pending:
    __slots__ = ("future", "method", "deadline", "timeout")

    def __init__(self, future: Any, method: str, deadline: float, timeout: float) -> None:
        self.future = future              # concurrent.futures.Future, or a _Waiter for call()
        self.method = method
        self.deadline = deadline
        self.timeout = timeout


class _ReadToken:
    """The right to read a descriptor-backed port, held by one thread at a time.

    The holder alone reads ``fd``, feeds the decoder, resolves calls and puts events on the
    dispatcher queue, so chunks are handled one at a time in wire order whoever reads them;
    every change of holder goes through ``mutex`` (a happens-before edge). A caller holds the
    token for its whole wait; the reader thread only while it reads and handles one chunk: it
    waits in select() *without* the token, so a caller takes a free token at once. Callers
    that find it held queue first come first served and are handed it in turn; the reader
    takes it only when no caller holds or waits for it, and parks on ``_gate`` meanwhile.
    """

    def __init__(self, fd: int, abort_r: int) -> None:
        self.fd = fd
        self.abort_r = abort_r            # pyserial's cancel_read() pipe: wakes the holder on close
        self.wake_r, self.wake_w = os.pipe()   # a byte here moves the reader from select() to its gate
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        # Used only by the caller holding the token (one at a time); poll() with a registered
        # set costs less per wait than select() with a list.
        self.caller_poll = select.poll()
        self.caller_poll.register(fd, select.POLLIN)
        self.caller_poll.register(abort_r, select.POLLIN)
        self.rx_buf = bytearray(_READ_CHUNK)   # the holder reads into it (_read_into)
        self.mutex = threading.Lock()
        self.holder = 0                   # thread ident of the holder, 0 when free
        self.waiters: "collections.deque[_Waiter]" = collections.deque()
        self._gate = threading.Lock()     # released to unpark the reader
        self._gate.acquire()
        self._reader_parked = False
        self._reader_deep = False         # parked until release() (the hold is a long one)
        self._reader_selecting = False    # the reader waits in select() on fd
        self._taken_at = 0.0              # monotonic s: when the current holder got the token
        self._freed_at = 0.0              # monotonic s: when the token was last freed
        self.closed = False

    def take(self, w: _Waiter) -> bool:
        """A caller asks for the token: True if it holds it now, else ``w`` is queued and
        signalled when the token is handed to it."""
        me = threading.get_ident()
        with self.mutex:
            if self.closed:
                return False
            if self.holder != 0:
                w.ident = me
                self.waiters.append(w)
                return False
            self.holder = me
            self._taken_at = time.monotonic()
            nudge = self._reader_selecting
            self._reader_selecting = False
        if nudge:
            # Without this the reader would wake with us on the response and compete for the
            # GIL; this way it leaves select() while the board is still working on the request.
            try:
                os.write(self.wake_w, b"\0")
            except OSError:               # pipe full: a nudge is already pending
                pass
        return True

    def after_wait(self, w: _Waiter, leave: bool) -> bool:
        """After ``w`` woke or timed out: True if the token was handed to it. With ``leave``
        (timed out, or the call ended), ``w`` also leaves the queue."""
        with self.mutex:
            if w.handoff:
                w.handoff = False
                return True
            if leave:
                try:
                    self.waiters.remove(w)
                except ValueError:
                    pass
            return False

    def release(self, by_reader: bool = False) -> None:
        """Pass the token to the first queued caller whose call has not ended, else free it
        (after a caller: the reader resumes READER_RESUME_S later, or at once after a long
        hold)."""
        with self.mutex:
            now = time.monotonic()
            while self.waiters:
                w = self.waiters.popleft()
                if not w.done():
                    self.holder = w.ident
                    self._taken_at = now
                    w.handoff = True
                    w.signal()
                    return
            self.holder = 0
            if by_reader:
                return
            self._freed_at = now
            if self._reader_parked and (self._reader_deep or now - self._taken_at >= READER_RESUME_S):
                self._reader_parked = False
                self._gate.release()

    def reader_may_select(self, park_s: float) -> bool:
        """The reader asks whether it may wait on fd: True once no caller has held or waited
        for the token for READER_RESUME_S; else it parks and gets False (to ask again)."""
        with self.mutex:
            if self.closed:
                return False
            now = time.monotonic()
            if self.holder == 0 and not self.waiters:
                wait = self._freed_at + READER_RESUME_S - now
                if wait <= 0:
                    self._reader_selecting = True
                    return True
                self._reader_deep = False
            else:
                wait = self._taken_at + READER_RESUME_S - now
                self._reader_deep = wait <= 0     # a long hold: its release() unparks us
                if self._reader_deep:
                    wait = park_s
            self._reader_parked = True
        if not self._gate.acquire(True, wait):
            with self.mutex:
                if self._reader_parked:
                    self._reader_parked = False
                    return False
            self._gate.acquire()          # released just as we timed out: re-arm
        return False

    def reader_take(self) -> bool:
        """The reader, back from select(), takes the token if it is free and nobody waits."""
        with self.mutex:
            self._reader_selecting = False
            if self.holder == 0 and not self.waiters and not self.closed:
                self.holder = threading.get_ident()
                return True
            return False

    def drain_wake(self) -> None:
        try:
            os.read(self.wake_r, 4096)
        except BlockingIOError:
            pass

    def shut(self) -> None:
        """No more readers: the parked reader leaves, callers stop asking for the token."""
        with self.mutex:
            self.closed = True
            if self._reader_parked:
                self._reader_parked = False
                self._gate.release()
        try:
            os.write(self.wake_w, b"\0")
        except OSError:
            pass

    def close_pipe(self) -> None:
        for fd in (self.wake_r, self.wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


def _write_fd(token: _ReadToken, frame: bytes) -> None:
    """Write ``frame`` whole to the token's descriptor. One os.write() in the usual case;
    pyserial's write() adds a select() per call even when the bytes all went out."""
    fd = token.fd
    view = memoryview(frame)
    while True:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            n = 0
        if n == len(view):
            return
        view = view[n:]
        # Output buffer full (the board is not reading): wait for room, a bounded wait at a
        # time so a close() is noticed.
        while not select.select([], [fd], [], READ_POLL_S)[1]:
            if token.closed:
                raise EOFError("port closed while writing")


# Dispatcher queue items: (kind, payload).
_Q_EVENTS = 0       # payload: list[Event]
_Q_LOST = 1         # payload: BoardLost (unplugged) -> lost listeners
_Q_RESET = 2        # payload: BoardReset -> lost listeners, then handshake again
_Q_STOP = 3
_Q_GAP = 4          # payload: LinkGap -> gap listeners (or a warning)


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
        self._token: Optional[_ReadToken] = None   # set while a descriptor-backed port is attached
        self._decoder = FrameDecoder()
        self._wlock = threading.Lock()     # one writer at a time; a frame is written whole
        self._plock = threading.Lock()     # registering vs failing all pending calls; never held over I/O
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._next_sweep = 0.0             # monotonic s; read and written by the token holder only
        self._listeners: tuple[Callable[[Event], Any], ...] = ()
        self._lost_listeners: tuple[Callable[[BaseException], Any], ...] = ()
        self._listener_lock = threading.Lock()
        self._lost: Optional[BoardLost] = None
        self._closed = False
        self._stopping = False
        self._reader: Optional[threading.Thread] = None
        self._reopen_lock = threading.RLock()
        self._q: "queue.SimpleQueue[tuple[int, Any]]" = queue.SimpleQueue()
        self._counters = {
            "frames_tx": 0, "bad_messages": 0, "unmatched_responses": 0, "late_responses": 0,
            "calls_timed_out": 0, "events": 0, "listener_errors": 0, "resets": 0, "links_lost": 0,
        }
        self._seq = EventSeq()             # read and written by the token holder only
        self._timed_out_ids: "collections.OrderedDict[int, None]" = collections.OrderedDict()
        self._gap_listeners: tuple[Callable[[LinkGap], Any], ...] = ()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, daemon=True,
                                            name=f"blebridge-dispatch {self.spec}")
        self._dispatcher.start()
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
        fd, abort = _fd_of(transport)
        if fd is not None and abort is not None:
            token = _ReadToken(fd, abort)
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

    def _wait_token_free(self, token: _ReadToken) -> None:
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
        self._q.put((_Q_STOP, None))
        if self._dispatcher is not threading.current_thread():
            self._dispatcher.join(_JOIN_TIMEOUT_S)

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
                    _write_fd(token, frame)
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
        w = _Waiter()
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

    def _read_for(self, token: _ReadToken, w: _Waiter, deadline: float, holding: bool) -> None:
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
                    data = _read_into(fd, token.rx_buf)
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
        with self._listener_lock:
            self._listeners = self._listeners + (fn,)

    def remove_event_listener(self, fn: Callable[[Event], Any]) -> None:
        with self._listener_lock:
            ls = list(self._listeners)
            if fn in ls:
                ls.remove(fn)
            self._listeners = tuple(ls)

    def add_lost_listener(self, fn: Callable[[BaseException], Any]) -> None:
        """Call ``fn(exc)`` (BoardReset or BoardLost) when the board resets or is unplugged."""
        with self._listener_lock:
            self._lost_listeners = self._lost_listeners + (fn,)

    def remove_lost_listener(self, fn: Callable[[BaseException], Any]) -> None:
        with self._listener_lock:
            ls = list(self._lost_listeners)
            if fn in ls:
                ls.remove(fn)
            self._lost_listeners = tuple(ls)

    def add_gap_listener(self, fn: Callable[[LinkGap], Any]) -> None:
        """Call ``fn(gap)`` on the dispatcher thread for every gap in the event frames (frames
        lost on the link), after the events received before it and before those after it.
        While a gap listener is registered the board logs no warning of its own."""
        with self._listener_lock:
            self._gap_listeners = self._gap_listeners + (fn,)

    def remove_gap_listener(self, fn: Callable[[LinkGap], Any]) -> None:
        with self._listener_lock:
            ls = list(self._gap_listeners)
            if fn in ls:
                ls.remove(fn)
            self._gap_listeners = tuple(ls)

    # -- reading: the reader thread, or a caller holding the read token -----------------------

    def _read_loop_fd(self, token: _ReadToken) -> None:
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
                        data = _read_into(fd, token.rx_buf)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        # A tty (VMIN=0) reads b"" when empty: a caller may have read what
                        # select() saw. Only still "readable" and still empty is end of file.
                        if select.select([fd], [], [], 0)[0]:
                            data = _read_into(fd, token.rx_buf)
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
        read = _make_reader(ser, READ_POLL_S)
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
                        got = [_make_event(msg[2], tuple(msg[3:]))]
                    else:
                        got = [_make_event(e[0], tuple(e[1:])) for e in msg[2:]]
                    if type(seq) is not int or seq < 0:
                        raise TypeError("event frame without a sequence number")
                    if any(type(ev.code) is not int for ev in got):     # event codes are uints
                        raise TypeError("event code is not an integer")
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
            self._q.put((_Q_EVENTS, events))

    def _on_gap(self, gap: LinkGap, events: list[Event]) -> list[Event]:
        """Event frames were lost: the events before the gap go out, then the gap."""
        if events:
            self._counters["events"] += len(events)
            self._q.put((_Q_EVENTS, events))
        self._q.put((_Q_GAP, gap))
        return []

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
            self._q.put((_Q_EVENTS, events))
        self._q.put((_Q_RESET, exc))
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
        self._q.put((_Q_LOST, exc))

    # -- dispatcher thread -----------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        get = self._q.get
        while True:
            kind, payload = get()
            if kind == _Q_EVENTS:
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
            elif kind == _Q_STOP:
                return
            elif kind == _Q_GAP:
                self._dispatch_gap(payload)
            else:
                for lost_fn in self._lost_listeners:
                    try:
                        lost_fn(payload)
                    except Exception:
                        self._counters["listener_errors"] += 1
                        log.exception("%s: lost listener %r raised", self.spec, lost_fn)
                if kind == _Q_RESET and not self._closed and self._lost is None:
                    try:
                        self.handshake()
                    except BlebridgeError as e:
                        log.warning("%s: handshake after reset failed: %s", self.spec, e)

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


def probe_handshake(ser: Any, timeout: float) -> Optional[BoardInfo]:
    """Handshake on an open transport without a Board (no threads): BoardInfo, or None if no
    valid answer came within ``timeout`` s. Used by ``auto`` to find a board that answers."""
    read = _make_reader(ser, min(READ_POLL_S, timeout))
    dec = FrameDecoder()
    ser.write(b"\x00" + encode_request(0, "handshake", (P.PROTO_MAJOR, P.PROTO_MINOR)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = read()
        for f in dec.feed(data) if data else ():
            try:
                msg = cbor2.loads(f)
            except Exception:
                continue
            if isinstance(msg, list) and len(msg) >= 4 and msg[0] == _MSG_RSP and msg[1] == 0:
                if msg[2] != 0:
                    return None
                return BoardInfo.from_handshake(msg[3])
    return None
