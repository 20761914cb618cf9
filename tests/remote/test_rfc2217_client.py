"""blebridge's RFC 2217 client (blebridge.transport.rfc2217): its Telnet receive loop on
scripted socket chunks, so chunk boundaries fall exactly where each test puts them.

No server runs here: the client's socket is a fake that hands out the given chunks, then the
end of the stream; the loop runs on the test's thread until that end.
"""
from __future__ import annotations

import threading
import time

import pytest
from serial import rfc2217
from serial.serialutil import SerialException

import blebridge.transport.rfc2217 as rfc2217_module
from blebridge.transport.rfc2217 import RFC2217Serial

IAC, SB, SE = rfc2217.IAC, rfc2217.SB, rfc2217.SE
COM = rfc2217.COM_PORT_OPTION
#: A read that only a cancel_read() ends within the test (s).
CANCELLED_READ_TIMEOUT_S = 600.0
#: How long the cancelled read may take to return on a loaded machine (s).
JOIN_TIMEOUT_S = 30.0


class ScriptedSocket:
    """recv_into() returns one scripted chunk per call, then b"" (the server closed)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.sent: list[bytes] = []

    def recv_into(self, buf: bytearray) -> int:
        if not self.chunks:
            return 0
        chunk = self.chunks.pop(0)
        buf[:len(chunk)] = chunk
        return len(chunk)

    def sendall(self, data: bytes) -> None:
        self.sent.append(bytes(data))


def received(chunks: list[bytes]) -> tuple[RFC2217Serial, ScriptedSocket]:
    """A client whose receive loop has consumed ``chunks`` and the end of the stream."""
    port = RFC2217Serial(None)
    sock = ScriptedSocket(chunks)
    port._socket = sock
    port.is_open = True
    port._telnet_options = []
    port._write_lock = threading.Lock()
    port._modemstate_timeout = rfc2217.Timeout(-1)
    port._telnet_read_loop()
    return port, sock


def drain(port: RFC2217Serial) -> bytes:
    data = b""
    while port.in_waiting:
        data += port.read_chunk(0)
    return data


def test_data_without_iac_arrives_unchanged():
    port, _ = received([b"hello", b" world"])
    assert drain(port) == b"hello world"


def test_doubled_iac_split_across_chunks_is_one_0xff_data_byte():
    port, _ = received([b"a" + IAC, IAC + b"b"])
    assert drain(port) == b"a\xffb"


def test_modem_state_notification_inside_data_is_handled_not_delivered():
    note = IAC + SB + COM + rfc2217.SERVER_NOTIFY_MODEMSTATE + b"\x30" + IAC + SE
    port, _ = received([b"ab" + note[:3], note[3:5], note[5:] + b"cd"])
    assert drain(port) == b"abcd"
    assert port._modemstate == 0x30


def test_unknown_option_offered_mid_data_is_refused_and_not_delivered():
    port, sock = received([b"x" + IAC + rfc2217.WILL, b"\x99y"])
    assert drain(port) == b"xy"
    assert sock.sent == [IAC + rfc2217.DONT + b"\x99"]


def test_read_chunk_gives_the_data_then_raises_once_the_server_closed():
    port, _ = received([b"last words"])
    assert port.read_chunk(0) == b"last words"
    with pytest.raises(SerialException, match="closed by the RFC 2217 server"):
        port.read_chunk(0)


def test_read_returns_at_most_size_bytes_in_order():
    port, _ = received([b"0123456789"])
    port._timeout = 0     # (the timeout setter would reconfigure the server's port)
    assert (port.read(4), port.read(4), port.read(4)) == (b"0123", b"4567", b"89")



def test_cancel_read_makes_a_waiting_read_chunk_return_nothing():
    port = RFC2217Serial(None)
    port.is_open = True
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(port.read_chunk(CANCELLED_READ_TIMEOUT_S)))
    reader.start()
    port.cancel_read()        # before or during the wait: either way the read returns
    reader.join(JOIN_TIMEOUT_S)
    assert not reader.is_alive() and result == [b""]


def test_receive_thread_waits_for_room_when_the_buffer_is_full():
    full = b"x" * rfc2217_module.RX_BUFFER_MAX
    port = RFC2217Serial(None)
    sock = ScriptedSocket([full, b"more"])
    port._socket = sock
    port.is_open = True
    receiver = threading.Thread(target=port._telnet_read_loop)
    receiver.start()
    try:
        # The first chunk fills the buffer; "more" is received but waits for room.
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while sock.chunks and time.monotonic() < deadline:
            time.sleep(0.001)
        assert not sock.chunks
        assert port.in_waiting == len(full)
        got = b""
        while len(got) < len(full) + 4:
            got += port.read_chunk(JOIN_TIMEOUT_S)
        assert got == full + b"more"
    finally:
        receiver.join(JOIN_TIMEOUT_S)
    assert not receiver.is_alive()
