"""Boards reached over the network, end to end: rfc2217:// (ser2net, pyserial's RFC 2217
server) and socket:// (ser2net raw, socat), each in front of a simulated board's pty.

Each test runs once per kind (the ``remote`` fixture). What goes through: the handshake, calls
whose bytes include Telnet's IAC (0xFF), a stream of events, BLE events from the shared air,
the ``blebridge info`` and ``blebridge run`` commands; and what a dead server or a board gone
from behind a live one (the board unplugged) does to a pending call and to a new connection.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from blebridge import BoardLost, PortOpenError, open_board
from blebridge.micropython import BLE

from conftest import HOST

# pyserial 3.5's rfc2217 open() names its thread with setDaemon()/setName(), deprecated since
# Python 3.10: not ours to fix.
pytestmark = [pytest.mark.filterwarnings("ignore:setDaemon:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:setName:DeprecationWarning")]

#: The longest a pending call may take to fail once its server is gone (s): far below the call's
#: own timeout, far above a loaded machine's scheduling delays.
LOST_WITHIN_S = 15.0
#: Timeout of a call that must stay pending until its server dies (s).
PENDING_CALL_TIMEOUT_S = 120.0
#: Seconds one `blebridge` command may take (interpreter start, connection, handshake).
CLI_TIMEOUT_S = 60.0
#: Seconds any single wait for events may take before the test fails.
EVENT_TIMEOUT_S = 30.0
#: Events of one bench_events stream (each 244 B: every byte value occurs).
STREAM_EVENTS = 2000
STREAM_PAYLOAD = 244

_IRQ_SCAN_RESULT = 5


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(HOST))
    return subprocess.run([sys.executable, "-m", "blebridge", *args], capture_output=True, text=True,
                          env=env, timeout=CLI_TIMEOUT_S)


def test_handshake_reports_the_simulated_board(remote):
    with open_board(remote.url) as board:
        info = board.handshake()
    assert info.board == "sim"


def test_echo_returns_every_byte_value_unchanged(remote):
    data = bytes(range(256))     # 0xFF is Telnet's IAC: RFC 2217 escapes it both ways
    with open_board(remote.url) as board:
        assert board.call("echo", data) == data


def test_event_stream_arrives_complete_and_in_order(remote):
    got: list[tuple[int, bytes]] = []
    done = threading.Event()

    def on_event(ev: Any) -> None:
        if ev.name == "BENCH":
            got.append(ev.fields)
            if len(got) == STREAM_EVENTS:
                done.set()

    with open_board(remote.url) as board:
        board.add_event_listener(on_event)
        board.call("bench_events", STREAM_EVENTS, STREAM_PAYLOAD)
        assert done.wait(EVENT_TIMEOUT_S), f"{len(got)} of {STREAM_EVENTS} events arrived"
    assert [seq for seq, _ in got] == list(range(STREAM_EVENTS))
    # The firmware fills payload byte i with (seq + i) mod 256.
    bad = [seq for seq, payload in got
           if payload != bytes((seq + i) % 256 for i in range(STREAM_PAYLOAD))]
    assert bad == []


def test_scan_through_the_server_sees_a_local_advertiser(remote, local_board_name):
    with open_board(f"sim:{local_board_name}?air={remote.air}") as local, \
            open_board(remote.url) as far:
        advertiser = BLE(local)
        scanner = BLE(far)
        try:
            advertiser.active(True)
            advertiser.gap_advertise(20_000, b"\x02\x01\x06")
            addr = bytes(advertiser.config("mac")[1])
            seen = threading.Event()

            def irq(event: int, data: tuple) -> None:
                if event == _IRQ_SCAN_RESULT and bytes(data[1]) == addr:
                    seen.set()

            scanner.active(True)
            scanner.irq(irq)
            scanner.gap_scan(0, 30_000, 30_000)    # until stopped
            try:
                assert seen.wait(EVENT_TIMEOUT_S)
            finally:
                scanner.gap_scan(None)
        finally:
            scanner.close()
            advertiser.close()


def test_blebridge_info_prints_the_board(remote):
    r = _cli("info", "--port", remote.url)
    assert r.returncode == 0, r.stderr
    assert any(line.split() == ["board", "sim"] for line in r.stdout.splitlines()), r.stdout


def test_blebridge_run_runs_a_script_against_the_board(remote):
    script = ("import bluetooth\n"
              "ble = bluetooth.BLE()\n"
              "ble.active(True)\n"
              "print('active', ble.active(), len(ble.config('mac')[1]))\n")
    r = _cli("run", "--port", remote.url, "-c", script)
    assert (r.returncode, r.stdout) == (0, "active True 6\n"), r.stderr


def test_server_killed_during_a_call_fails_it_with_board_lost(remote):
    with open_board(remote.url) as board:
        os.kill(remote.sim.pid, signal.SIGSTOP)     # a stopped board cannot answer: the call pends
        try:
            fut = board.call_nowait("echo", b"pending", timeout=PENDING_CALL_TIMEOUT_S)
            remote.server.kill()                    # the board unplugged from the rig host
            exc = fut.exception(timeout=LOST_WITHIN_S)
        finally:
            os.kill(remote.sim.pid, signal.SIGCONT)
        assert isinstance(exc, BoardLost), repr(exc)
        assert "link lost" in str(exc)


def test_call_after_the_server_died_fails_at_once_with_board_lost(remote):
    with open_board(remote.url) as board:
        remote.server.kill()
        deadline = time.monotonic() + LOST_WITHIN_S
        while not board.is_lost and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(BoardLost):
            board.call("echo", b"after", timeout=PENDING_CALL_TIMEOUT_S)


def test_opening_a_dead_server_says_connection_refused(remote):
    remote.server.kill()
    with pytest.raises(PortOpenError) as info:
        open_board(remote.url)
    assert "connection refused" in str(info.value)


def test_blebridge_info_on_a_dead_server_prints_one_line_and_a_hint(remote):
    remote.server.kill()
    r = _cli("info", "--port", remote.url)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith(f"blebridge: error: cannot open {remote.url}: connection refused"), r.stderr


def test_board_process_killed_behind_the_server_fails_a_pending_call_with_board_lost(remote):
    # The board unplugged from a rig host whose server still runs: its pty hangs up, and the
    # server (ser2net, socat, pyserial's) ends the connection.
    with open_board(remote.url) as board:
        os.kill(remote.sim.pid, signal.SIGSTOP)
        fut = board.call_nowait("echo", b"pending", timeout=PENDING_CALL_TIMEOUT_S)
        os.kill(remote.sim.pid, signal.SIGKILL)
        exc = fut.exception(timeout=LOST_WITHIN_S)
    assert isinstance(exc, BoardLost), repr(exc)
    assert "link lost" in str(exc)
