"""Reading and writing a transport's bytes the fast way: the port's descriptor where it has one.

pyserial's read() and write() cost a select() or more per call. Local serial ports and
pseudo-terminals (sim boards) expose their descriptor and pyserial's cancel_read() pipe; this
module is the one place that reaches into those pyserial internals (``fd``,
``pipe_abort_read_r``, and ``_socket`` of socket://). Each kind of port has its own path:

- local serial port, pseudo-terminal: select + read on the descriptor;
- socket:// (pyserial's ``protocol_socket.Serial``, no thread of its own): select + recv on
  its socket;
- rfc2217:// (blebridge.transport.rfc2217.RFC2217Serial): its ``read_chunk()``. Its socket
  must never be read here: a Telnet receive thread owns it (it also carries the RFC 2217
  negotiation), and a second reader would take bytes from it;
- anything else: pyserial's read().
"""
from __future__ import annotations

import os
import select
from typing import Any, Callable, Optional

#: Read poll period (s): how long a read waits before the reader thread checks for close.
READ_POLL_S = 0.05
#: Most bytes read from a descriptor or socket in one call.
READ_CHUNK = 65536


def fd_of(ser: Any) -> tuple[Optional[int], Optional[int]]:
    """(descriptor, pyserial abort pipe) of a local serial port or pseudo-terminal, else Nones."""
    inner = getattr(ser, "serial", ser)    # SimTransport wraps a pyserial port
    fd = getattr(inner, "fd", None)
    abort = getattr(inner, "pipe_abort_read_r", None)
    if isinstance(fd, int) and isinstance(abort, int):
        return fd, abort
    return None, None


def _is_socket_url_port(ser: Any) -> bool:
    """True for pyserial's socket:// port, whose socket nothing else reads. Other ports have
    a ``_socket`` too (pyserial's rfc2217.Serial, read by its own thread): not these."""
    return type(ser).__module__ == "serial.urlhandler.protocol_socket"


def read_into(fd: int, buf: bytearray) -> bytes:
    """``os.read(fd, len(buf))`` through a buffer the caller reuses: the bytes that arrived.

    os.read allocates the whole size asked for and shrinks it to what was read: with 64 KiB
    asked and a few hundred bytes read per chunk, the shrunk blocks fragment the C heap, and
    RSS kept growing (make soak: +13.5 % in 10 min, the heap's free space growing with it).
    Raises BlockingIOError as os.read does; b"" at end of file.
    """
    n = os.readv(fd, (buf,))
    return bytes(memoryview(buf)[:n]) if n else b""


def make_reader(ser: Any, poll_s: float) -> Callable[[], bytes]:
    """A function returning the next chunk (b"" when idle); raises OSError when the link dies.

    Local serial ports and pseudo-terminals are read with select + os.read on the descriptor
    (one syscall pair per chunk, any size), socket:// with select + recv, rfc2217:// through
    its read_chunk(); other pyserial ports through their read() (see the module doc).
    """
    fd, abort = fd_of(ser)
    buf = bytearray(READ_CHUNK)   # this reader's own (see read_into)
    if fd is not None and abort is not None:
        def read_fd() -> bytes:
            ready, _, _ = select.select([fd, abort], [], [], poll_s)
            if not ready:
                return b""
            if abort in ready:
                os.read(abort, 1000)
                return b""
            try:
                data = read_into(fd, buf)
            except BlockingIOError:
                return b""
            if not data:
                raise EOFError("end of file on the port")
            return data
        return read_fd
    inner = getattr(ser, "serial", ser)
    read_chunk = getattr(inner, "read_chunk", None)
    if read_chunk is not None:              # rfc2217://: what its receive thread decoded
        def read_chunked() -> bytes:
            return read_chunk(poll_s)
        return read_chunked
    sock = getattr(inner, "_socket", None) if _is_socket_url_port(inner) else None
    if sock is not None:                    # socket:// — its in_waiting only says 0 or 1
        def read_sock() -> bytes:
            ready, _, _ = select.select([sock], [], [], poll_s)
            if not ready:
                return b""
            n = sock.recv_into(buf)   # not recv(): see read_into
            data = bytes(memoryview(buf)[:n])
            if not data:
                raise EOFError("connection closed by the remote end")
            return data
        return read_sock

    def read_generic() -> bytes:
        return ser.read(ser.in_waiting or 1)
    return read_generic


def write_fd(fd: int, frame: bytes, closed: Callable[[], bool]) -> None:
    """Write ``frame`` whole to descriptor ``fd``. One os.write() in the usual case; pyserial's
    write() adds a select() per call even when the bytes all went out. Raises EOFError when
    ``closed()`` turns true while the output buffer stays full."""
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
            if closed():
                raise EOFError("port closed while writing")
