"""Transports: spec grammar, pyserial URLs, open errors with hints, sim ownership."""
from __future__ import annotations

import os
import socket
import sys
import threading
import types

import pytest

from blebridge import open_board
from blebridge.errors import PortOpenError
from blebridge.transport import open_transport
from blebridge.transport.sim import parse_sim_spec
from serial_fakeboard import FakeBoard


def test_sim_spec_gives_name_and_air():
    assert parse_sim_spec("sim:alice?air=/tmp/a.sock") == ("alice", "/tmp/a.sock")


def test_sim_spec_without_air_uses_the_default():
    assert parse_sim_spec("sim:bob") == ("bob", None)


def test_sim_spec_with_an_unknown_option_is_refused():
    with pytest.raises(PortOpenError, match="unknown option"):
        parse_sim_spec("sim:bob?speed=3")


def test_loop_url_opens_through_pyserial():
    t = open_transport("loop://")
    try:
        t.write(b"abc")
        assert t.read(3) == b"abc"
    finally:
        t.close()


def test_missing_device_says_no_such_port_and_hints_list():
    with pytest.raises(PortOpenError) as ei:
        open_transport("/dev/ttyDOESNOTEXIST")
    assert ei.value.reason == "no such port" and "blebridge list" in ei.value.hint


def test_second_open_of_a_local_port_is_refused_as_busy(fake):
    first = open_transport(fake.path)
    try:
        with pytest.raises(PortOpenError) as ei:
            open_transport(fake.path)
        assert ei.value.reason == "the port is busy" and "another program holds it" in ei.value.hint
    finally:
        first.close()


def test_unknown_url_scheme_is_a_port_open_error():
    with pytest.raises(PortOpenError):
        open_transport("nosuchscheme://x")


def test_hwgrep_without_a_match_says_no_such_port():
    with pytest.raises(PortOpenError, match="no such port"):
        open_transport("hwgrep://no-device-matches-this-xyzzy")


def test_unknown_usb_serial_number_says_which_are_present():
    with pytest.raises(PortOpenError, match="no USB port with serial number"):
        open_transport("id:NO-SUCH-SERIAL-0000")


def test_board_over_socket_url(fake):
    # A TCP relay in front of the fake board stands in for ser2net.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def relay() -> None:
        conn, _ = srv.accept()
        fd = os.open(fake.path, os.O_RDWR | os.O_NOCTTY)

        def pump_in() -> None:
            while True:
                d = conn.recv(65536)
                if not d:
                    return
                os.write(fd, d)
        threading.Thread(target=pump_in, daemon=True).start()
        while True:
            try:
                d = os.read(fd, 65536)
                conn.sendall(d)
            except OSError:
                return

    threading.Thread(target=relay, daemon=True).start()
    board = open_board(f"socket://127.0.0.1:{port}", timeout=5)
    try:
        assert board.info.board == "fake"
        assert board.call("echo", b"tcp") == b"tcp"
    finally:
        board.close()
        srv.close()


class _StubSimBoard:
    def __init__(self, name: str, pty: str, detached: bool) -> None:
        self.name, self.pty, self.pid, self.air = name, pty, 4242, "/tmp/air.sock"
        self.detached = detached
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def stub_launcher(monkeypatch, fake):
    """blebridge.sim.launcher replaced by a stub whose boards are the fake board's pty."""
    made: list[_StubSimBoard] = []
    mod = types.ModuleType("blebridge.sim.launcher")

    def resolve(name, air=None):
        b = _StubSimBoard(name, fake.path, detached=name.startswith("detached"))
        made.append(b)
        return b

    mod.resolve = resolve
    import blebridge.sim as simpkg
    monkeypatch.setitem(sys.modules, "blebridge.sim.launcher", mod)
    monkeypatch.setattr(simpkg, "launcher", mod, raising=False)
    return made


def test_closing_a_sim_board_stops_the_process_it_started(stub_launcher):
    board = open_board("sim:alice", timeout=5)
    board.close()
    assert stub_launcher[0].stopped


def test_closing_a_sim_board_leaves_a_detached_process_running(stub_launcher):
    board = open_board("sim:detached1", timeout=5)
    board.close()
    assert not stub_launcher[0].stopped


def test_reopen_resolves_a_sim_spec_again(stub_launcher):
    board = open_board("sim:alice", timeout=5)
    try:
        board.reopen()
        assert len(stub_launcher) == 2 and stub_launcher[0].stopped
        assert board.call("echo", b"x") == b"x"
    finally:
        board.close()


def test_auto_without_known_boards_says_none_answered(monkeypatch):
    import blebridge.transport.usb as usb
    monkeypatch.setattr(usb, "board_candidates", lambda: [])
    with pytest.raises(PortOpenError, match="no board answered"):
        open_transport("auto")


def test_auto_picks_the_first_candidate_that_answers(monkeypatch, fake):
    import blebridge.transport.usb as usb
    from blebridge.ports import KNOWN_BOARDS, PortInfo
    silent = FakeBoard()
    silent.handlers["handshake"] = lambda args: None
    monkeypatch.setattr(usb, "AUTO_PROBE_TIMEOUT_S", 0.3)

    def port(path):
        return PortInfo(path, "S1", 0x239A, 0x8029, "Adafruit", "Feather", None, KNOWN_BOARDS[(0x239A, 0x8029)])
    monkeypatch.setattr(usb, "board_candidates", lambda: [port(silent.path), port(fake.path)])
    try:
        t = open_transport("auto")
        assert t.blebridge_spec == fake.path
        t.close()
    finally:
        silent.close()
