"""`blebridge sim start NAME --capture FILE`: the board's HCI traffic in a file Wireshark reads,
checked with tshark (Debian package `tshark`; .ci/run installs it)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cli_helpers import COMMAND_TIMEOUT_S, assert_one_line_and_hint, blebridge, board_name

SCRIPT = Path(__file__).resolve().parent / "gatt_read_pair.py"
VALUE = b"hello-capture"          # what gatt_read_pair.py serves and reads


def _tshark(capture: Path, *args: str) -> str:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (Debian: apt install tshark; .ci/run installs it)")
    r = subprocess.run([tshark, "-r", str(capture), *args], capture_output=True, text=True,
                       timeout=COMMAND_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def captured_read(tmp_path):
    """The capture of a board that advertised, was connected to and served a GATT read."""
    capture = tmp_path / "peripheral.btsnoop"
    peripheral, central = board_name("capp"), board_name("capc")
    r = blebridge("sim", "start", peripheral, "--capture", str(capture))
    assert r.returncode == 0, r.stderr
    try:
        r = blebridge("run", str(SCRIPT), f"sim:{peripheral}", f"sim:{central}")
        assert r.returncode == 0 and r.stdout == f"read {VALUE.decode()}\n", r.stderr
    finally:
        stopped = blebridge("sim", "stop", peripheral)
    assert stopped.returncode == 0, stopped.stderr
    return capture


def test_tshark_decodes_the_advertising_connection_and_att_read_of_a_capture(captured_read):
    summary = _tshark(captured_read)
    assert "Advertising Enable" in summary
    assert "LE Connection Complete" in summary
    assert "Read Request" in summary and "Read Response" in summary
    values = _tshark(captured_read, "-Y", "btatt.opcode == 0x0b", "-T", "fields", "-e", "btatt.value")
    assert values.split() == [VALUE.hex()]


def test_start_says_where_the_capture_goes(tmp_path):
    capture, name = tmp_path / "c.btsnoop", board_name("capx")
    r = blebridge("sim", "start", name, "--capture", str(capture))
    try:
        assert r.returncode == 0, r.stderr
        assert f"capturing its HCI traffic to {capture}" in r.stdout
        assert capture.read_bytes().startswith(b"btsnoop\0")
    finally:
        blebridge("sim", "stop", name)


def test_capture_to_a_file_that_cannot_be_written_starts_no_board(tmp_path):
    name = board_name("capz")
    r = blebridge("sim", "start", name, "--capture", str(tmp_path / "no" / "such" / "dir.btsnoop"))
    assert_one_line_and_hint(r, "cannot capture", "No such file or directory")
    assert name not in blebridge("sim", "list").stdout


def test_an_air_with_a_capture_dir_captures_every_board_that_joins(tmp_path):
    from blebridge.sim import launcher
    from blebridge.sim.air import AirThread

    air = AirThread.start(str(tmp_path / "air.sock"))
    try:
        air.air.capture_dir = tmp_path
        board = launcher.start_board("captured", air=air.socket_path)
        board.stop()
    finally:
        air.stop()
    assert (tmp_path / "captured.btsnoop").read_bytes().startswith(b"btsnoop\0")
