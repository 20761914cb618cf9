"""`blebridge run`: errors of the set-up (port, handshake) and of the script's text are told in a
line or two, never as a traceback through blebridge's modules."""
from __future__ import annotations

from cli_helpers import assert_one_line_and_hint, blebridge


def test_port_that_cannot_be_opened_fails_even_if_the_script_never_touches_the_radio():
    r = blebridge("run", "--port", "/dev/ttyNOSUCHPORT", "-c", "print('ran')")
    assert r.stdout == ""
    assert_one_line_and_hint(r, "cannot open /dev/ttyNOSUCHPORT", "blebridge list")


def test_port_from_the_environment_is_checked_too():
    from cli_helpers import cli_env
    r = blebridge("run", "-c", "print('ran')", env=cli_env(BLEBRIDGE_PORT="/dev/ttyNOSUCHPORT"))
    assert r.stdout == ""
    assert_one_line_and_hint(r, "cannot open /dev/ttyNOSUCHPORT")


def test_board_that_does_not_answer_is_refused_before_the_script_runs(silent_port):
    r = blebridge("run", "--port", silent_port, "-c", "print('ran')")
    assert r.stdout == ""
    assert_one_line_and_hint(r, "handshake: no answer", "blebridge flash")


def test_handshake_timeout_when_the_script_opens_the_board_is_a_line_and_a_hint(silent_port):
    r = blebridge("run", "-c", f"import bluetooth\nble = bluetooth.BLE(port={silent_port!r})\nprint('ran')")
    assert r.stdout == ""
    assert_one_line_and_hint(r, "handshake: no answer", "blebridge flash")
    assert "Traceback" not in r.stderr


def test_port_error_when_the_script_opens_the_board_is_a_line_and_a_hint():
    r = blebridge("run", "-c", "import bluetooth\nble = bluetooth.BLE(port='/dev/ttyNOSUCHPORT')")
    assert_one_line_and_hint(r, "cannot open /dev/ttyNOSUCHPORT")


def test_syntax_error_shows_the_error_without_frames_of_blebridge(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("print('a')\nx = (\n")
    r = blebridge("run", str(script))
    assert r.returncode == 1 and r.stdout == ""
    assert "SyntaxError" in r.stderr and str(script) in r.stderr
    assert "Traceback" not in r.stderr and "blebridge" not in r.stderr.replace(str(tmp_path), "")
