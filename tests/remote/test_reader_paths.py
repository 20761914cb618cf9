"""Which path blebridge's reader takes for each kind of network port (transport/reader.py):
a port whose socket a Telnet thread owns is never read through that socket."""
from __future__ import annotations

import socket
from typing import Iterator

import pytest
from serial import rfc2217

from blebridge.transport.reader import make_reader
from blebridge.transport.serial_port import open_serial

#: Poll period handed to the readers here (s); data is always waiting, so no read waits it out.
POLL_S = 5.0


@pytest.fixture
def waiting_socket() -> Iterator[socket.socket]:
    """A connected socket with b"on the socket" waiting to be read."""
    a, b = socket.socketpair()
    b.sendall(b"on the socket")
    yield a
    a.close()
    b.close()


class ChunkedPort:
    """A port with a read_chunk() (as blebridge's RFC2217Serial) and a socket with data."""

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock

    def read_chunk(self, timeout: float) -> bytes:
        return b"from read_chunk"


class PyserialRfc2217Port(rfc2217.Serial):
    """pyserial's own RFC 2217 client, its read() stubbed: its socket belongs to its thread."""

    @property
    def in_waiting(self) -> int:
        return 0

    def read(self, size: int = 1) -> bytes:
        return b"from read"


def test_a_port_with_read_chunk_is_read_through_it_not_its_socket(waiting_socket):
    read = make_reader(ChunkedPort(waiting_socket), POLL_S)
    assert read() == b"from read_chunk"
    assert waiting_socket.recv(100) == b"on the socket"      # untouched


def test_pyserials_rfc2217_port_is_read_through_read_not_its_socket(waiting_socket):
    port = PyserialRfc2217Port(None)
    port._socket = waiting_socket
    read = make_reader(port, POLL_S)
    assert read() == b"from read"
    assert waiting_socket.recv(100) == b"on the socket"      # untouched


def test_a_socket_url_port_is_read_from_its_socket():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = open_serial(f"socket://127.0.0.1:{listener.getsockname()[1]}")
        try:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"raw bytes")
                assert make_reader(port, POLL_S)() == b"raw bytes"
        finally:
            port.close()
