"""The read token: whoever reads a descriptor-backed port holds it (see the RPC client,
blebridge.rpc.board, for the threads).

Caller reads (descriptor-backed ports). Handing a response from the reader thread to a waiting
caller costs a thread wake-up (futex) and a GIL hand-off, which doubled a round trip. So whoever
reads the port holds the *read token* (ReadToken), and a caller of board.call() takes it:
  - It takes the token *before* writing its request (so the reader cannot be the one to see
    the response), writes, then polls and reads the port on its own thread until its own
    response arrives, and hands the token on: to the next queued caller whose call has not
    ended, else back to the reader thread.
  - Everything it reads goes through the same function as the reader's (Board._on_chunk):
    responses to other calls resolve their futures, events go on the dispatcher queue in one
    put per chunk, BOOT with a new boot id fails every pending call. Only the token holder reads and
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
  - board.call() waits on a bare lock per call (Waiter), not a concurrent.futures.Future
    (whose Condition costs more per wait); call_nowait()/acall() keep Futures.
  - The request is written with one os.write() (pyserial's write() adds a select() per call).
"""
from __future__ import annotations

import collections
import os
import select
import threading
import time
from typing import Any, Optional

from ..transport.reader import READ_CHUNK

#: How long the reader thread stays off the port after a caller of call() stops reading it
#: (s). A caller that comes within this time finds the token free and the reader parked, so
#: back-to-back calls cost no thread wake-ups; events and call_nowait() results arriving
#: after the last call() are read at most this much later.
READER_RESUME_S = 0.001


class Waiter:
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
        with SIGNAL_MUTEX:               # release the lock once per wait, never twice
            if not self._signalled:
                self._signalled = True
                self._news.release()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for news; True if there was some."""
        if not self._news.acquire(True, timeout):
            return False
        with SIGNAL_MUTEX:
            self._signalled = False       # the lock is held again: armed for the next news
        return True

    def result(self) -> Any:
        if self._exc is not None:
            raise self._exc
        return self._result


SIGNAL_MUTEX = threading.Lock()


class ReadToken:
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
        self.rx_buf = bytearray(READ_CHUNK)   # the holder reads into it (transport.reader.read_into)
        self.mutex = threading.Lock()
        self.holder = 0                   # thread ident of the holder, 0 when free
        self.waiters: "collections.deque[Waiter]" = collections.deque()
        self._gate = threading.Lock()     # released to unpark the reader
        self._gate.acquire()
        self._reader_parked = False
        self._reader_deep = False         # parked until release() (the hold is a long one)
        self._reader_selecting = False    # the reader waits in select() on fd
        self._taken_at = 0.0              # monotonic s: when the current holder got the token
        self._freed_at = 0.0              # monotonic s: when the token was last freed
        self.closed = False

    def take(self, w: Waiter) -> bool:
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

    def after_wait(self, w: Waiter, leave: bool) -> bool:
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

    def is_closed(self) -> bool:
        return self.closed

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
