"""`blebridge run` (and a plain Python script) when its board's process, or the air, fails, and
when the script itself is killed.

What a user gets: the run ends with a non-zero status and ONE line on stderr saying what
happened to the board (no traceback: the script is not at fault), whether the script was
calling the board or idly waiting for events; and a script killed by SIGTERM or interrupted by
SIGINT releases the simulated board it started at once. After every test no board process of
its air remains (conftest.py checks the process table).
"""
from __future__ import annotations

import contextlib
import os
import signal
import textwrap
from pathlib import Path
from typing import Callable

import proc_table
import pytest

#: `blebridge run` exit status when the board fails or cannot be opened (cli.EXIT_ERROR).
EXIT_ERROR = 2
#: Seconds a run may take to end once its board failed: the stopped-board case waits for a
#: call's default timeout (10 s) first; the rest is margin for a loaded machine.
RUN_END_TIMEOUT_S = 120.0

#: A board script that calls its board continually.
CALLING = """
    import bluetooth, time
    ble = bluetooth.BLE()
    ble.active(True)
    print("ready")
    while True:
        ble.config("mac")
        time.sleep_ms(20)
"""
#: A board script that only waits (for IRQs) once set up.
IDLE = """
    import bluetooth, time
    ble = bluetooth.BLE()
    ble.active(True)
    print("ready")
    while True:
        time.sleep_ms(100)
"""


def start_run(child: Callable, tmp_path: Path, spec: str, source: str):
    script = tmp_path / "board_script.py"
    script.write_text(textwrap.dedent(source))
    run = child("-m", "blebridge", "run", "--port", spec, str(script))
    run.wait_line("ready")
    return run


def assert_one_line_cause(status: int, err: str, cause: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == EXIT_ERROR, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("blebridge: error:") and cause in lines[0], err


def test_run_ends_with_one_line_when_its_board_process_is_killed(child, tmp_path, spec_of,
                                                                 air_socket):
    run = start_run(child, tmp_path, spec_of("run-killed"), CALLING)
    os.kill(proc_table.one_board(air_socket, "run-killed").pid, signal.SIGKILL)
    status, _, err = run.finish(RUN_END_TIMEOUT_S)
    assert_one_line_cause(status, err, "killed by SIGKILL")


def test_run_ends_with_one_line_when_its_idle_board_process_is_killed(child, tmp_path, spec_of,
                                                                      air_socket):
    run = start_run(child, tmp_path, spec_of("run-idle"), IDLE)
    os.kill(proc_table.one_board(air_socket, "run-idle").pid, signal.SIGKILL)
    status, _, err = run.finish(RUN_END_TIMEOUT_S)
    assert_one_line_cause(status, err, "killed by SIGKILL")


#: A CircuitPython script (adafruit_ble) that waits for a central the way Adafruit's examples
#: do, polling in a busy loop.
CP_POLLING = """
    from adafruit_ble import BLERadio
    from adafruit_ble.advertising import Advertisement
    ble = BLERadio()
    ble.start_advertising(Advertisement())
    print("ready")
    while not ble.connected:
        pass
"""


def test_circuitpython_run_ends_with_one_line_when_its_board_process_is_killed(
        child, tmp_path, spec_of, air_socket):
    run = start_run(child, tmp_path, spec_of("run-cp-killed"), CP_POLLING)
    os.kill(proc_table.one_board(air_socket, "run-cp-killed").pid, signal.SIGKILL)
    status, _, err = run.finish(RUN_END_TIMEOUT_S)
    assert_one_line_cause(status, err, "killed by SIGKILL")


def test_circuitpython_run_on_the_default_port_ends_when_its_board_process_is_killed(
        child, tmp_path, spec_of, air_socket, monkeypatch):
    # No --port: the script opens its board itself, on first use of _bleio.adapter.
    monkeypatch.delenv("BLEBRIDGE_PORT", raising=False)
    script = tmp_path / "board_script.py"
    script.write_text(textwrap.dedent(CP_POLLING).replace(
        "ble = BLERadio()", f"import os\nos.environ['BLEBRIDGE_PORT'] = {spec_of('run-cp-default')!r}\n"
                            "ble = BLERadio()"))
    run = child("-m", "blebridge", "run", str(script))
    run.wait_line("ready")
    os.kill(proc_table.one_board(air_socket, "run-cp-default").pid, signal.SIGKILL)
    status, _, err = run.finish(RUN_END_TIMEOUT_S)
    assert_one_line_cause(status, err, "killed by SIGKILL")


def test_run_ends_with_one_line_when_its_board_process_stops_answering(child, tmp_path, spec_of,
                                                                       air_socket):
    run = start_run(child, tmp_path, spec_of("run-stopped"), CALLING)
    pid = proc_table.one_board(air_socket, "run-stopped").pid
    os.kill(pid, signal.SIGSTOP)
    try:
        status, _, err = run.finish(RUN_END_TIMEOUT_S)
    finally:
        with contextlib.suppress(ProcessLookupError):   # the run resumes it to stop it
            os.kill(pid, signal.SIGCONT)
    assert_one_line_cause(status, err, "no answer from the board")


def test_run_ends_with_one_line_when_the_air_is_killed(child, tmp_path, spec_of, air_socket):
    run = start_run(child, tmp_path, spec_of("run-air"), CALLING)
    os.kill(proc_table.one_air(air_socket).pid, signal.SIGKILL)
    status, _, err = run.finish(RUN_END_TIMEOUT_S)
    assert_one_line_cause(status, err, "the air closed the connection")


#: A board script that turns its radio off when interrupted.
CLEANS_UP = """
    import bluetooth, os, time
    ble = bluetooth.BLE()
    ble.active(True)
    try:
        # Inside the try: the interrupt may come as soon as this is seen. One write(2), not
        # print(): an interrupt in the middle of print's buffered write repeats its text.
        os.write(1, b"ready\\n")
        while True:
            time.sleep_ms(100)
    except KeyboardInterrupt:
        ble.active(False)
        print("cleaned up")
"""


def test_ctrl_c_in_a_terminal_interrupts_the_script_and_leaves_it_its_board(child, tmp_path,
                                                                            spec_of, air_socket):
    run = start_run(child, tmp_path, spec_of("run-ctrl-c"), CLEANS_UP)
    proc_table.one_board(air_socket, "run-ctrl-c")
    os.killpg(run.proc.pid, signal.SIGINT)    # a terminal sends Ctrl-C to the whole job
    status, out, err = run.finish(RUN_END_TIMEOUT_S)
    assert (status, out.strip()) == (0, "cleaned up"), err


PLAIN_SCRIPT = """
    import sys, time
    from blebridge.micropython import BLE
    ble = BLE(port=sys.argv[1])
    ble.active(True)
    print("ready", flush=True)
    while True:
        time.sleep(0.1)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_run_killed_by_a_signal_releases_its_board_at_once(child, tmp_path, spec_of, air_socket,
                                                            sig):
    run = start_run(child, tmp_path, spec_of("run-signalled"), IDLE)
    proc_table.one_board(air_socket, "run-signalled")
    os.kill(run.proc.pid, sig)
    run.finish(RUN_END_TIMEOUT_S)
    proc_table.wait_for(lambda: not proc_table.boards(air_socket, "run-signalled"),
                        "the run's board process is gone")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_python_script_killed_by_a_signal_releases_its_board_at_once(child, tmp_path, spec_of,
                                                                      air_socket, sig):
    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent(PLAIN_SCRIPT))
    proc = child(str(script), spec_of("plain-signalled"))
    proc.wait_line("ready")
    proc_table.one_board(air_socket, "plain-signalled")
    os.kill(proc.proc.pid, sig)
    proc.finish(RUN_END_TIMEOUT_S)
    proc_table.wait_for(lambda: not proc_table.boards(air_socket, "plain-signalled"),
                        "the script's board process is gone")


def test_same_sim_name_opens_again_after_the_run_that_owned_it_was_killed(child, tmp_path,
                                                                          spec_of, air_socket,
                                                                          open_sim):
    run = start_run(child, tmp_path, spec_of("reused"), IDLE)
    os.kill(run.proc.pid, signal.SIGKILL)
    run.finish(RUN_END_TIMEOUT_S)
    proc_table.wait_for(lambda: not proc_table.boards(air_socket, "reused"),
                        "the run's board process is gone")
    board = open_sim("reused")
    assert board.call("echo", b"mine now") == b"mine now"
