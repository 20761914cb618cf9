"""``rfc2217://HOST:PORT[?opts]``: pyserial's RFC 2217 client with a receive path that keeps up.

pyserial's ``rfc2217.Serial`` does the Telnet and RFC 2217 negotiation well, but its receive
thread handles the stream one byte at a time: recv(1024), then a Python loop putting every
data byte into a ``queue.Queue`` that read() takes apart again one ``get()`` per byte. That is
two locked queue operations per byte; it capped `blebridge bench` at 836-1,437 events/s of
244 B (0.20-0.35 MB/s) through ser2net, under a third of what a USB full-speed board sends
(1.2 MB/s). This client: 49,619 events/s (12.1 MB/s), median of 3 runs (README "Remote
boards").

:class:`RFC2217Serial` keeps pyserial's negotiation, option and control code and replaces only
the byte path:

- the receive thread reads up to READ_CHUNK bytes per recv and copies the runs between Telnet
  IAC bytes into one bytearray with slicing (``bytes.find``), so a chunk without IAC costs one
  copy; commands and subnegotiations still go to pyserial's handlers;
- read() and :meth:`read_chunk` take whole runs out of that buffer under one condition
  variable; read_chunk (what blebridge's reader uses) returns everything that arrived. The
  buffer holds at most RX_BUFFER_MAX bytes (pyserial's queue had no bound).

It also does not wait for the server's acknowledgement of SET_CONTROL (DTR, RTS, flow
control), as pyserial's ``?ign_set_control`` option: ser2net in front of a pseudo-terminal
(a simulated board, a board behind a pty bridge) never sends it, because the pty refuses the
modem-line ioctl (ENOTTY) and ser2net drops the answer; pyserial then fails the open with
"timeout while waiting for option 'control'". blebridge does not use DTR or RTS on remote
boards, so nothing depends on the acknowledgement.

The module touches these pyserial 3.x internals, all of ``serial.rfc2217.Serial``:
``_telnet_read_loop`` (replaced), ``_socket``, ``_read_buffer`` (left unused),
``_telnet_negotiate_option``, ``_telnet_process_command``, ``_telnet_process_subnegotiation``,
``_rfc2217_options``, ``_ignore_set_control_answer``, ``_timeout``.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Optional

from serial import rfc2217
from serial.serialutil import PortNotOpenError, SerialException

from .reader import READ_CHUNK, READ_POLL_S

#: Most received bytes held for the reader (bytes). When the host stops reading, the receive
#: thread stops receiving at this size, so TCP's window and the server's buffers push back on
#: the board (as a full USB endpoint does) instead of memory growing without end.
RX_BUFFER_MAX = 1 << 20

_IAC = rfc2217.IAC[0]
_SB = rfc2217.SB
_SE = rfc2217.SE
_NEGOTIATIONS = (rfc2217.DO, rfc2217.DONT, rfc2217.WILL, rfc2217.WONT)

# Telnet receive states (as pyserial's M_NORMAL, M_IAC_SEEN, M_NEGOTIATE).
_NORMAL, _IAC_SEEN, _NEGOTIATE = 0, 1, 2


class RFC2217Serial(rfc2217.Serial):
    """pyserial's RFC 2217 client (``serial.rfc2217.Serial``) with a bulk receive path."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self._rx = bytearray()
        self._rx_cond = threading.Condition()
        #: Why the connection ended (an exception), None while it is up.
        self._rx_end: Optional[BaseException] = None
        #: A cancel_read() not yet seen by read_chunk() (as a byte in pyserial's abort pipe).
        self._rx_cancel = False
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        with self._rx_cond:
            self._rx.clear()
            self._rx_end = None
        super().open()

    def from_url(self, url: str):  # type: ignore[no-untyped-def]
        addr = super().from_url(url)
        # See the module doc: SET_CONTROL is sent but its acknowledgement is not awaited.
        self._ignore_set_control_answer = True
        return addr

    def rfc2217_set_control(self, value: bytes) -> None:
        # pyserial sleeps 0.1 s after each unacknowledged SET_CONTROL ("helps the unit tests");
        # open() sends two or three of them. The request is sent all the same.
        if self._ignore_set_control_answer:
            self._rfc2217_options["control"].set(value)
        else:
            super().rfc2217_set_control(value)

    # -- receiving --------------------------------------------------------------------------

    def _telnet_read_loop(self) -> None:
        """The receive thread (started by pyserial's open()): Telnet decoding in runs."""
        buf = bytearray(READ_CHUNK)
        mode = _NORMAL
        command = b""
        suboption: Optional[bytearray] = None
        end: BaseException = SerialException("connection closed by the RFC 2217 server")
        try:
            while self.is_open:
                sock = self._socket
                if sock is None:
                    break
                try:
                    n = sock.recv_into(buf)
                except socket.timeout:
                    continue      # the socket's timeout only lets the loop see close()
                except OSError as exc:
                    end = SerialException(f"connection to the RFC 2217 server failed: {exc}")
                    break
                if n == 0:
                    break
                chunk = bytes(memoryview(buf)[:n])
                runs: list[bytes] = []
                i = 0
                while i < n:
                    if mode == _NORMAL:
                        j = chunk.find(_IAC, i)
                        stop = n if j < 0 else j
                        if stop > i:
                            if suboption is not None:
                                suboption += chunk[i:stop]
                            else:
                                runs.append(chunk[i:stop])
                        if j < 0:
                            break
                        mode = _IAC_SEEN
                        i = j + 1
                        continue
                    byte = chunk[i:i + 1]
                    i += 1
                    if mode == _IAC_SEEN:
                        mode = _NORMAL
                        if byte == rfc2217.IAC:       # an escaped 0xFF data byte
                            if suboption is not None:
                                suboption += byte
                            else:
                                runs.append(byte)
                        elif byte == _SB:
                            suboption = bytearray()
                        elif byte == _SE:
                            if suboption is not None:
                                # Data received so far goes out first: a subnegotiation may
                                # be a purge of the receive buffer.
                                self._deliver(runs)
                                runs = []
                                self._telnet_process_subnegotiation(bytes(suboption))
                            suboption = None
                        elif byte in _NEGOTIATIONS:
                            command = byte
                            mode = _NEGOTIATE
                        else:
                            self._telnet_process_command(byte)
                    else:                             # _NEGOTIATE: the option byte
                        mode = _NORMAL
                        self._telnet_negotiate_option(command, byte)
                self._deliver(runs)
        except Exception as exc:      # a handler failed: the link is unusable, say why
            end = SerialException(f"RFC 2217 receive failed: {exc!r}")
        finally:
            with self._rx_cond:
                self._rx_end = end
                self._rx_cond.notify_all()

    def _deliver(self, runs: list[bytes]) -> None:
        if not runs:
            return
        with self._rx_cond:
            # Bounded waits: close() (is_open false) ends this one within READ_POLL_S.
            while len(self._rx) >= RX_BUFFER_MAX and self.is_open:
                self._rx_cond.wait(READ_POLL_S)
            self._rx += runs[0] if len(runs) == 1 else b"".join(runs)
            self._rx_cond.notify_all()

    @property
    def in_waiting(self) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        return len(self._rx)

    def read_chunk(self, timeout: float) -> bytes:
        """Everything received (up to READ_CHUNK bytes), waiting up to ``timeout`` s for the
        first byte; b"" when nothing came. Raises SerialException (an OSError) once the
        connection is gone and what it delivered has been read."""
        with self._rx_cond:
            if not self._rx and self._rx_end is None and not self._rx_cancel:
                self._rx_cond.wait(timeout)
            self._rx_cancel = False
            if self._rx:
                data = bytes(self._rx[:READ_CHUNK])
                del self._rx[:READ_CHUNK]
                self._rx_cond.notify_all()      # the receive thread may wait for room
                return data
            if self._rx_end is not None:
                raise self._rx_end
            if not self.is_open:
                raise PortNotOpenError()
            return b""

    def read(self, size: int = 1) -> bytes:
        """pyserial's read(): up to ``size`` bytes, waiting up to ``timeout`` for all of them."""
        if not self.is_open:
            raise PortNotOpenError()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._rx_cond:
            while len(self._rx) < size and self._rx_end is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._rx_cond.wait(remaining)
            if not self._rx and self._rx_end is not None:
                raise self._rx_end
            data = bytes(self._rx[:size])
            del self._rx[:size]
            self._rx_cond.notify_all()          # the receive thread may wait for room
            return data

    def cancel_read(self) -> None:
        """Make the waiting or the next read_chunk() return at once (b"" if nothing came), as
        pyserial's cancel_read() does for local ports: the RPC client calls it when it closes
        the board, so its reader thread ends without waiting for its poll period."""
        with self._rx_cond:
            self._rx_cancel = True
            self._rx_cond.notify_all()

    def reset_input_buffer(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()
        self.rfc2217_send_purge(rfc2217.PURGE_RECEIVE_BUFFER)
        with self._rx_cond:
            self._rx.clear()

    def close(self) -> None:
        super().close()
        with self._rx_cond:
            self._rx_cond.notify_all()


__all__ = ["RFC2217Serial"]
