"""The RPC client and the CLI against real simulated boards (build/sim/bb_sim on a private air).

Skipped when the sim firmware is not built (`make firmware`) or Bumble is missing.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("bumble")
launcher = pytest.importorskip("blebridge.sim.launcher")

from blebridge import BoardLost, BoardReset, open_board  # noqa: E402
from blebridge import protocol as P  # noqa: E402

try:
    launcher.firmware_path()
except FileNotFoundError as exc:      # pragma: no cover - depends on the build
    pytest.skip(f"sim firmware not built: {exc}", allow_module_level=True)


@pytest.fixture(scope="module")
def air(tmp_path_factory):
    sock = str(tmp_path_factory.mktemp("air") / "air.sock")
    launcher.ensure_air(sock)
    yield sock
    launcher.stop_all(sock)


def wait_until(pred, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_sim_board_handshakes_as_a_sim_port(air):
    with open_board(f"sim:hs?air={air}") as board:
        assert board.info.port == "sim" and board.info.proto[0] == P.PROTO_MAJOR
        assert board.call("echo", b"\x00sim\x00") == b"\x00sim\x00"


def test_sim_board_events_arrive_complete_and_in_order(air):
    with open_board(f"sim:ev?air={air}") as board:
        seqs: list[int] = []
        done = threading.Event()

        def listener(ev):
            if ev.code == P.EV_BENCH:
                seqs.append(ev.fields[0])
                if len(seqs) == 20000:
                    done.set()

        board.add_event_listener(listener)
        board.call("bench_events", 20000, 20)
        assert done.wait(20)
        assert seqs == list(range(20000))


def test_sim_board_reset_fails_pending_calls_and_handshakes_again(air):
    with open_board(f"sim:rst?air={air}") as board:
        old_boot = board.info.boot_id
        lost = []
        board.add_lost_listener(lost.append)
        board.transport.sim_board.reset()
        assert wait_until(lambda: lost and board.info.boot_id != old_boot)
        assert isinstance(lost[0], BoardReset)
        assert board.call("echo", b"after reset") == b"after reset"


def test_killed_sim_process_is_board_lost_and_reopen_starts_a_new_one(air):
    board = open_board(f"sim:kill?air={air}")
    try:
        os.kill(board.transport.sim_board.pid, signal.SIGKILL)
        assert wait_until(lambda: board.is_lost)
        with pytest.raises(BoardLost):
            board.call("echo", b"x")
        board.reopen()
        assert board.call("echo", b"back") == b"back"
    finally:
        board.close()


def test_closing_an_owned_sim_board_ends_its_process(air):
    board = open_board(f"sim:own?air={air}")
    sim = board.transport.sim_board
    board.close()
    assert not sim.alive()


def test_cli_sim_start_list_info_stop(air, cli_env):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "blebridge", *args], env=cli_env,
                              capture_output=True, text=True, timeout=60)

    r = cli("sim", "start", "clidet", "--air", air)
    assert r.returncode == 0, r.stderr
    assert f"--port sim:clidet?air={air}" in r.stdout
    assert "clidet" in cli("sim", "list", "--air", air).stdout
    r = cli("info", "--port", f"sim:clidet?air={air}")
    assert r.returncode == 0, r.stderr
    assert "port          sim:clidet" in r.stdout and "board counters" in r.stdout
    assert cli("sim", "stop", "clidet", "--air", air).returncode == 0
    assert "clidet" not in cli("sim", "list", "--air", air).stdout
