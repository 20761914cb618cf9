"""The air serves a bare controller over H4/TCP to a board with its own host (sim/hci_server.py),
and the controller behaves as such a host (NimBLE) needs. No NimBLE here: the H4 client is this
test, so these run in `make test` (tests/sim/test_nimble_board.py runs the real NimBLE board)."""
from __future__ import annotations

import errno
import socket
import struct
import time

import cbor2
import pytest

pytest.importorskip("bumble")

from blebridge.framing import FrameDecoder, encode_frame  # noqa: E402
from blebridge.sim.board import address_for_name  # noqa: E402

#: Seconds any answer from the air may take (the machine may be loaded).
ANSWER_TIMEOUT_S = 10.0

H4_COMMAND, H4_EVENT = 0x01, 0x04
EVT_COMMAND_COMPLETE, EVT_LE_META = 0x0E, 0x3E
SUBEVT_SCAN_TIMEOUT = 0x11
OP_RESET = 0x0C03
OP_READ_BD_ADDR = 0x1009
OP_LE_SET_EXT_SCAN_PARAMS = 0x2041
OP_LE_SET_EXT_SCAN_ENABLE = 0x2042


def ask_controller(air_socket: str, name: str) -> tuple[socket.socket, list]:
    """Send controller(NAME) on a new Unix connection; (the connection, the answer)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(ANSWER_TIMEOUT_S)
    sock.connect(air_socket)
    sock.sendall(encode_frame(cbor2.dumps([0, 1, "controller", name])))
    decoder = FrameDecoder()
    while True:
        chunk = sock.recv(4096)
        assert chunk, "the air closed the connection without an answer"
        payloads = decoder.feed(chunk)
        if payloads:
            return sock, cbor2.loads(payloads[0])


class H4:
    """A minimal HCI host on the controller's TCP port."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT_S)
        self.buf = b""

    def command(self, opcode: int, params: bytes = b"") -> None:
        self.sock.sendall(bytes([H4_COMMAND]) + struct.pack("<HB", opcode, len(params)) + params)

    def event(self) -> tuple[int, bytes]:
        """The next HCI event: (code, parameters)."""
        while True:
            if len(self.buf) >= 3:
                assert self.buf[0] == H4_EVENT, f"not an event: {self.buf.hex()}"
                length = self.buf[2]
                if len(self.buf) >= 3 + length:
                    code, params = self.buf[1], self.buf[3:3 + length]
                    self.buf = self.buf[3 + length:]
                    return code, params
            chunk = self.sock.recv(4096)
            assert chunk, "the controller closed the connection"
            self.buf += chunk

    def command_complete(self, opcode: int) -> bytes:
        """Return parameters of the Command Complete of ``opcode`` (status first)."""
        while True:
            code, params = self.event()
            if code == EVT_COMMAND_COMPLETE and struct.unpack_from("<H", params, 1)[0] == opcode:
                return params[3:]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def controller(air):
    """(Unix connection, H4 client) of a bare controller named "nim" on this test's air."""
    sock, answer = ask_controller(air.socket_path, "nim")
    assert answer[:3] == [1, 1, 0], answer
    h4 = H4(answer[3])
    yield sock, h4
    h4.close()
    sock.close()


def test_air_answers_controller_request_with_a_tcp_port(air):
    sock, answer = ask_controller(air.socket_path, "nim")
    try:
        assert answer[:3] == [1, 1, 0]
        assert isinstance(answer[3], int) and 0 < answer[3] < 65536
    finally:
        sock.close()


def test_served_controller_answers_h4_reset_with_command_complete(controller):
    _sock, h4 = controller
    h4.command(OP_RESET)
    assert h4.command_complete(OP_RESET)[0] == 0


def test_served_controller_public_address_is_the_boards_name_address(controller):
    _sock, h4 = controller
    h4.command(OP_READ_BD_ADDR)
    ret = h4.command_complete(OP_READ_BD_ADDR)
    assert ret[0] == 0
    assert ret[1:7] == bytes(address_for_name("nim"))


def test_second_controller_of_the_same_name_is_refused_with_eaddrinuse(controller, air):
    sock, answer = ask_controller(air.socket_path, "nim")
    sock.close()
    assert answer[:3] == [1, 1, -errno.EADDRINUSE]


def test_controller_leaves_the_air_when_its_board_disconnects(air):
    sock, answer = ask_controller(air.socket_path, "gone")
    assert answer[2] == 0
    assert air.call(lambda: "gone" in air.air.controllers)
    sock.close()
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while air.call(lambda: "gone" in air.air.controllers):
        assert time.monotonic() < deadline, "the controller stayed on the air"
        time.sleep(0.02)
    assert air.call(lambda: all(c.name != "hci:gone" for c in air.air.link.controllers))


def test_extended_scan_with_a_duration_ends_with_le_scan_timeout(controller):
    _sock, h4 = controller
    # Own address public, no filter, 1M PHY only: passive, interval = window = 16 (10 ms).
    h4.command(OP_LE_SET_EXT_SCAN_PARAMS, bytes([0, 0, 1, 0]) + struct.pack("<HH", 16, 16))
    assert h4.command_complete(OP_LE_SET_EXT_SCAN_PARAMS)[0] == 0
    # Enable, no duplicate filter, duration 5 (50 ms), period 0.
    h4.command(OP_LE_SET_EXT_SCAN_ENABLE, bytes([1, 0]) + struct.pack("<HH", 5, 0))
    assert h4.command_complete(OP_LE_SET_EXT_SCAN_ENABLE)[0] == 0
    while True:
        code, params = h4.event()
        if code == EVT_LE_META and params[0] == SUBEVT_SCAN_TIMEOUT:
            break


def test_encryption_change_is_v1_for_a_host_that_did_not_enable_v2(air):
    from bumble import hci

    from blebridge.sim.controller import AirController

    sent: list[bytes] = []

    class Sink:
        def on_packet(self, packet: bytes) -> None:
            sent.append(packet)

    class Conn:
        handle = 1

    def run() -> None:
        controller = AirController("v1", host_sink=Sink())
        controller.on_le_encryption_change(Conn(), hci.HCI_ErrorCode.SUCCESS)

    air.call(run)
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while not sent:  # sent on the air's loop, one step later
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert sent[0][1] == hci.HCI_ENCRYPTION_CHANGE_EVENT


def test_encryption_change_is_v2_when_the_host_enabled_it(air):
    from bumble import hci

    from blebridge.sim.controller import AirController

    sent: list[bytes] = []

    class Sink:
        def on_packet(self, packet: bytes) -> None:
            sent.append(packet)

    class Conn:
        handle = 1

    def run() -> None:
        controller = AirController("v2", host_sink=Sink())
        mask = hci.HCI_Set_Event_Mask_Page_2_Command.mask([hci.HCI_ENCRYPTION_CHANGE_V2_EVENT])
        controller.event_mask_page_2 = int.from_bytes(mask, "little")
        controller.on_le_encryption_change(Conn(), hci.HCI_ErrorCode.SUCCESS)

    air.call(run)
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while not sent:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert sent[0][1] == hci.HCI_ENCRYPTION_CHANGE_V2_EVENT
