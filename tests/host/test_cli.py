"""The `blebridge` command: output of each command, one-line errors with hints, exit status 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types


from blebridge import cli
from blebridge import protocol as P
from blebridge.transport import open_transport
from serial_fakeboard import FakeBoard


def run_cli(args, env, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blebridge", *args], env=env, capture_output=True,
                          text=True, timeout=60, **kw)


def assert_one_line_error(r: subprocess.CompletedProcess, *fragments: str) -> None:
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith("blebridge: error: ") and lines[1].startswith("hint: ")
    assert "Traceback" not in r.stderr
    for f in fragments:
        assert f in r.stderr


def test_info_prints_handshake_and_counters(fake, cli_env):
    r = run_cli(["info", "--port", fake.path], cli_env)
    assert r.returncode == 0, r.stderr
    assert "board         fake" in r.stdout
    assert f"protocol      {P.PROTO_MAJOR}.{P.PROTO_MINOR}" in r.stdout
    assert "max_connections" in r.stdout and "host counters" in r.stdout and "crc_errors" in r.stdout


def test_info_json_is_machine_readable(fake, cli_env):
    r = run_cli(["info", "--port", fake.path, "--json"], cli_env)
    d = json.loads(r.stdout)
    assert d["board"] == "fake" and d["addr"] == "C6:05:04:03:02:01" and "host_frames_rx" in d["diagnostics"]


def test_port_defaults_to_blebridge_port(fake, cli_env):
    r = run_cli(["info"], dict(cli_env, BLEBRIDGE_PORT=fake.path))
    assert r.returncode == 0, r.stderr
    assert "board         fake" in r.stdout


def test_no_such_port_is_one_error_line_and_a_hint(cli_env):
    r = run_cli(["info", "--port", "/dev/ttyNOSUCHPORT"], cli_env)
    assert_one_line_error(r, "no such port", "blebridge list")


def test_busy_port_says_another_program_holds_it(fake, cli_env):
    holder = open_transport(fake.path)
    try:
        r = run_cli(["info", "--port", fake.path], cli_env)
    finally:
        holder.close()
    assert_one_line_error(r, "busy", "another program holds it")


def test_permission_denied_hints_the_dialout_group(fake):
    os.chmod(fake.path, 0)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:                      # child: an unprivileged user, as a desktop user would be
        try:
            sys.stderr = os.fdopen(wfd, "w")
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            rc = cli.main(["info", "--port", fake.path])
            sys.stderr.flush()
        except BaseException:
            rc = 99
        os._exit(rc)
    os.close(wfd)
    _, status = os.waitpid(pid, 0)
    err = os.read(rfd, 65536).decode()
    os.close(rfd)
    assert os.waitstatus_to_exitcode(status) == 2, err
    assert err.startswith("blebridge: error: ") and "permission denied" in err
    assert "sudo usermod -aG dialout $USER" in err and "Traceback" not in err


def test_version_mismatch_error_names_both_versions_and_the_fix(cli_env):
    fb = FakeBoard(proto=(P.PROTO_MAJOR + 1, 4))
    try:
        r = run_cli(["info", "--port", fb.path], cli_env)
    finally:
        fb.close()
    assert_one_line_error(r, f"{P.PROTO_MAJOR}.{P.PROTO_MINOR}", f"{P.PROTO_MAJOR + 1}.4",
                          f"blebridge flash --port {fb.path}")


def test_debug_env_shows_the_traceback(cli_env):
    r = run_cli(["info", "--port", "/dev/ttyNOSUCHPORT"], dict(cli_env, BLEBRIDGE_DEBUG="1"))
    assert r.returncode == 2 and "Traceback" in r.stderr and "blebridge: error:" in r.stderr


def test_list_prints_a_table_or_says_there_is_none(cli_env):
    r = run_cli(["list"], cli_env)
    assert r.returncode == 0
    assert r.stdout.startswith("PORT") or r.stdout.startswith("no serial ports")


def test_bench_json_reports_every_figure(fake, cli_env):
    r = run_cli(["bench", "--port", fake.path, "--count", "2000", "--echo-count", "50", "--json"], cli_env)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["baseline"] == "link_echo" and d["ratio_p50"] > 0
    assert [e["received"] for e in d["events"]] == [2000, 2000]
    assert set(d["targets"]) == {"rpc_p50_ratio", "events_20B_per_s", "mb_per_s_244B"}


def test_missing_plugin_modules_are_skipped(monkeypatch):
    monkeypatch.setattr(cli, "PLUGIN_MODULES", ("blebridge_no_such_plugin",))
    assert "info" in cli.build_parser().format_help()


def test_plugin_module_adds_its_subcommand(monkeypatch, capsys):
    plugin = types.ModuleType("blebridge_test_plugin")

    def add_parser(subparsers):
        p = subparsers.add_parser("hello", help="say hello")
        p.set_defaults(func=lambda args: print("hello from plugin") or 0)

    plugin.add_parser = add_parser
    monkeypatch.setitem(sys.modules, "blebridge_test_plugin", plugin)
    monkeypatch.setattr(cli, "PLUGIN_MODULES", ("blebridge_test_plugin",))
    assert cli.main(["hello"]) == 0
    assert capsys.readouterr().out == "hello from plugin\n"


def test_command_errors_from_plugins_get_the_same_format(monkeypatch, capsys):
    plugin = types.ModuleType("blebridge_test_plugin")

    def fail(args):
        raise cli.CliError("no firmware image for this board", "build it with `pio run`")

    plugin.add_parser = lambda sub: sub.add_parser("boom").set_defaults(func=fail)
    monkeypatch.setitem(sys.modules, "blebridge_test_plugin", plugin)
    monkeypatch.setattr(cli, "PLUGIN_MODULES", ("blebridge_test_plugin",))
    assert cli.main(["boom"]) == 2
    assert capsys.readouterr().err == ("blebridge: error: no firmware image for this board\n"
                                       "hint: build it with `pio run`\n")


def test_info_counts_event_frames_lost_on_the_link(fake, cli_env):
    r = run_cli(["info", "--port", fake.path], cli_env)
    assert r.returncode == 0, r.stderr
    assert "link_gaps" in r.stdout and "link_frames_lost" in r.stdout


def test_info_shows_the_faults_a_relay_injected(fake):
    from blebridge.rpc import open_board
    from blebridge.transport.faults import FaultRelay, parse_faults
    relay = FaultRelay(fake.path, parse_faults("delay.host:0.0", "9"))
    try:
        with open_board(relay.path, timeout=5) as board:
            board.transport.fault_relay = relay        # as a sim: transport carries it
            text = cli._format_info(relay.path, board, board.diagnostics())
    finally:
        relay.close()
    assert "faults injected (seed 9" in text and "frames_damaged" in text
