"""`blebridge repl`: a Python prompt with the board open and the API imported."""
from __future__ import annotations

from cli_helpers import Command, assert_one_line_and_hint, blebridge, board_name


def _repl(lines: str, *extra: str):
    return blebridge("repl", "--port", f"sim:{board_name('repl')}", *extra, input=lines)


def test_piped_lines_run_with_ble_open_on_the_port():
    r = _repl("print('active', ble.active(True))\n")
    assert r.returncode == 0, r.stderr
    assert "active True" in r.stdout


def test_micropython_modules_are_imported():
    r = _repl("print(bluetooth.BLE() is ble, const(7), time.ticks_diff(5, 3))\n")
    assert r.returncode == 0, r.stderr
    assert "True 7 2" in r.stdout


def test_banner_names_the_api_the_port_and_what_is_ready():
    port = f"sim:{board_name('repl')}"
    r = blebridge("repl", "--port", port, input="")
    assert r.returncode == 0, r.stderr
    assert "MicroPython bluetooth" in r.stderr and port in r.stderr
    assert "ble = bluetooth.BLE()" in r.stderr


def test_an_exception_at_the_prompt_is_shown_and_the_prompt_goes_on():
    r = _repl("1/0\nprint('still here')\n")
    assert r.returncode == 0, r.stderr
    assert "ZeroDivisionError" in r.stderr and "still here" in r.stdout


def test_exit_with_a_status_ends_the_repl_with_it():
    r = _repl("exit(3)\nprint('not run')\n")
    assert r.returncode == 3 and "not run" not in r.stdout


def test_api_not_available_yet_is_refused_as_run_refuses_it():
    r = blebridge("repl", "--api", "circuitpython", input="print('ran')\n")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == ("blebridge: error: the CircuitPython _bleio API is not available yet in "
                        "this blebridge version\n")


def test_port_that_cannot_be_opened_is_one_line_and_a_hint():
    r = blebridge("repl", "--port", "/dev/ttyNOSUCHPORT", input="print('ran')\n")
    assert_one_line_and_hint(r, "cannot open /dev/ttyNOSUCHPORT")
    assert "ran" not in r.stdout


def test_tab_completes_the_attributes_of_ble(tmp_path):
    repl = Command("repl", "--port", f"sim:{board_name('repl')}", "--history", str(tmp_path / "h"),
                   tty=True)
    try:
        repl.wait_for(lambda out: b">>> " in out, "prompt")
        repl.send("ble.gap_adv\t")
        repl.wait_for(lambda out: b"ble.gap_advertise" in out, "completed attribute")
        repl.send("\x15\x04")                 # erase the line, then Ctrl-D: leave
        status, out, err = repl.finish()
    finally:
        repl.kill()
    assert status == 0, err


def test_history_is_kept_for_the_next_session(tmp_path):
    history = tmp_path / "history"
    repl = Command("repl", "--port", f"sim:{board_name('repl')}", "--history", str(history), tty=True)
    try:
        repl.wait_for(lambda out: b">>> " in out, "prompt")
        repl.send("answer = 6 * 7\n")
        repl.wait_for(lambda out: out.count(b">>> ") >= 2, "second prompt")
        repl.send("\x04")
        status, out, err = repl.finish()
    finally:
        repl.kill()
    assert status == 0, err
    assert "answer = 6 * 7" in history.read_text()


def test_statements_follow_the_micropython_dialect_as_under_run():
    r = _repl("b'ab' + 'c'\nbuf = bytearray(1)\nbuf[0] = 257\nbuf\n")
    assert r.returncode == 0, r.stderr
    assert "b'abc'" in r.stdout and "bytearray(b'\\x01')" in r.stdout


def test_a_board_lost_under_the_prompt_is_told_and_the_prompt_stays():
    import os
    import signal
    import subprocess

    repl = Command("repl", "--port", f"sim:{board_name('repl')}", stdin=subprocess.PIPE,
                   merge_stderr=True)
    try:
        repl.proc.stdin.write(b"print('pid', ble.session.board.transport.sim_board.pid)\n")
        repl.proc.stdin.flush()
        out = repl.wait_for(lambda out: b"pid " in out and out.split(b"pid ")[1].count(b"\n") >= 1, "board pid")
        os.kill(int(out.split(b"pid ")[1].split()[0]), signal.SIGKILL)
        repl.wait_for(lambda out: b"blebridge: the board is gone" in out, "line telling the board is gone")
        repl.proc.stdin.write(b"print('still', 'here')\n")
        repl.proc.stdin.close()
        status, out, _ = repl.finish()
    finally:
        repl.kill()
    assert status == 0, out
    assert "still here" in out
