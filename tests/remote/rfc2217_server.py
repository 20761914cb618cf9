"""pyserial's RFC 2217 server (``serial.rfc2217.PortManager``) in front of one serial port.

    python rfc2217_server.py PTY [PORT]

Listens on 127.0.0.1:PORT (default 0: the OS picks; tests/remote/servers.py reads it from
/proc) and serves one client at a time, as pyserial's examples/rfc2217_server.py does: one
thread copies the port to the network through ``PortManager.escape`` (Telnet IAC doubling),
the other the network to the port through ``PortManager.filter`` (which answers the Telnet
and RFC 2217 requests). Both are pyserial's own, byte-by-byte Python code: throughput through
this server is bounded by them, not by the client.

A pseudo-terminal has no modem lines: setting DTR/RTS (RFC 2217 SET_CONTROL) and reading
CTS/DSR/RI/CD (PortManager reports them when a client arrives) fail with ENOTTY in pyserial,
which would end PortManager's thread. PtySerial ignores the outputs and reports the inputs of a
connected null-modem cable (CTS, DSR, CD on; RI off).
"""
from __future__ import annotations

import errno
import socket
import sys
import threading

import serial
from serial import rfc2217

#: Most bytes taken from the network per recv (bytes).
NET_CHUNK = 65536


class PtySerial(serial.Serial):
    """A pyserial port on a pseudo-terminal: DTR/RTS changes are accepted and ignored; the
    modem inputs read as a connected cable."""

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True

    def _update_dtr_state(self) -> None:
        try:
            super()._update_dtr_state()
        except OSError as exc:
            if exc.errno != errno.ENOTTY:
                raise

    def _update_rts_state(self) -> None:
        try:
            super()._update_rts_state()
        except OSError as exc:
            if exc.errno != errno.ENOTTY:
                raise


class Connection:
    """The client's socket as PortManager wants it (``write``), one writer at a time: the
    port's data and PortManager's answers come from two threads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            self.sock.sendall(data)


def _port_to_network(ser: serial.Serial, conn: Connection, manager: rfc2217.PortManager,
                     alive: threading.Event) -> None:
    try:
        while alive.is_set():
            data = ser.read(ser.in_waiting or 1)
            if data:
                conn.write(b"".join(manager.escape(data)))
    except (OSError, serial.SerialException) as exc:   # the client or the port went away
        print(f"port to network: {exc!r}", file=sys.stderr, flush=True)
    finally:
        alive.clear()
        # The port is gone (the board unplugged): end the client's connection too, as ser2net
        # does; the other thread's recv() returns.
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve_one(ser: serial.Serial, sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = Connection(sock)
    manager = rfc2217.PortManager(ser, conn)
    alive = threading.Event()
    alive.set()
    out = threading.Thread(target=_port_to_network, args=(ser, conn, manager, alive), daemon=True)
    out.start()
    try:
        while alive.is_set():
            data = sock.recv(NET_CHUNK)
            if not data:
                break
            ser.write(b"".join(manager.filter(data)))
    except (OSError, serial.SerialException) as exc:   # the client or the port went away
        print(f"network to port: {exc!r}", file=sys.stderr, flush=True)
    finally:
        alive.clear()
        sock.close()
        out.join()


def main() -> int:
    pty = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    print(f"listening on 127.0.0.1:{listener.getsockname()[1]} for {pty}", flush=True)
    while True:
        conn, _ = listener.accept()
        # The port is opened per client (as ser2net does) so a client finds it fresh; the
        # read timeout lets the port-to-network thread see the client leave (s).
        ser = PtySerial(pty, timeout=0.05)
        try:
            serve_one(ser, conn)
        finally:
            ser.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
