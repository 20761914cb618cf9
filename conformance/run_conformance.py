#!/usr/bin/env python3
"""MicroPython's own BLE test suite, micropython-lib's aioble, Adafruit's adafruit_ble examples
and Zerynth's BLE examples, against blebridge boards.

    python conformance/run_conformance.py [--micropython ~/src/micropython] \\
        [--micropython-lib ~/src/micropython-lib] [--zerynth ~/src/zerynth] \\
        [--adafruit-ble ~/src/Adafruit_CircuitPython_BLE
        [--adafruit-ble-heart-rate ~/src/Adafruit_CircuitPython_BLE_Heart_Rate]]
        [--suite NAME ...] [-k NAME] [--trace] [--stacks A,B]
    make conformance [MICROPYTHON=~/src/micropython] [MICROPYTHON_LIB=~/src/micropython-lib] \\
        [ZERYNTH=~/src/zerynth] [ADAFRUIT_BLE=~/src/Adafruit_CircuitPython_BLE [ADAFRUIT_BLE_HEART_RATE=...]] \\
        [NIMBLE=<mynewt-nimble checkout>]

Any checkout may be left out (at least one of --micropython, --zerynth and --adafruit-ble is needed).

Suites (each reported on its own as "n of N"; default: every suite the checkouts given allow):

``micropython``      ``tests/multi_bluetooth``'s ``ble_*`` and ``perf_*`` tests of the
                     MicroPython checkout (the ``stress_*`` ones need a board's deep sleep or
                     filesystem).
``aioble-upstream``  micropython-lib's ``micropython/bluetooth/aioble/multitests`` with that
                     checkout's aioble package on PYTHONPATH: upstream aioble, unmodified, on
                     blebridge's ``bluetooth`` and asyncio.
``aioble-ours``      the same tests with no PYTHONPATH: ``import aioble`` is blebridge's own.
``examples``         aioble's examples as pairs on blebridge's own aioble: temp_sensor +
                     temp_client (passes when the client has printed TEMP_READINGS
                     temperatures) and l2cap_file_server + l2cap_file_client (passes when the
                     client got the size of a file and "not found" for a missing one over GATT,
                     and downloaded the file intact over L2CAP).
``examples-upstream`` the same pairs on upstream aioble (PYTHONPATH); only when asked for.
``zerynth``          Zerynth's own BLE examples, unmodified, from the directory given with
                     --zerynth, which holds the checkouts of zerynth/lib-nordic-nrf52_ble and
                     zerynth/lib-espressif-esp32ble under those names: each runs under
                     ``blebridge run --api zerynth`` on a simulated board and is checked by a
                     peer written with MicroPython's ``bluetooth`` (conformance/zerynth/pairs.py).
``adafruit-ble``     the ``examples/`` of an Adafruit_CircuitPython_BLE checkout, unmodified,
                     under ``blebridge run`` (``--api circuitpython``, detected) with the
                     adafruit_ble of the environment (PyPI): the two-device examples as pairs on
                     two simulated boards, the one-board ones against a peer (see
                     :data:`ADAFRUIT_PAIRS`, and conformance/circuitpython/README.md for the
                     peers and hardware stand-ins the harness brings). Each pair runs until what
                     it checks has been printed, then both sides are ended (the examples loop
                     forever). ``ble_demo_*`` needs adafruit-circuitpython-bluefruitconnect and
                     ``ble_hid_periph`` adafruit-circuitpython-hid (the environment ``make``
                     sets up has them: pyproject's test extra). With ``--adafruit-ble-heart-rate`` (an
                     Adafruit_CircuitPython_BLE_Heart_Rate checkout) also that library's example
                     against a heart-rate sensor written with MicroPython's ``bluetooth``.

The multitests run under ``tests/run-multitests.py`` of the MicroPython checkout, with two
``exec:`` instances that are ``blebridge run`` against two simulated boards on a private air
per suite (its connection interval for a connect that names none: SUITE_CONN_INTERVAL_MS).
Each suite's boards keep their bonds in a directory of the run (BLEBRIDGE_SECRETS_DIR), so a
run starts with no bonds whatever earlier runs left (a bond one board kept and its peer did
not made pairing tests fail).
run-multitests.py starts an ``exec:`` instance as ``[PROGRAM, "-c", script]`` with no other
arguments, so each instance is a small wrapper script written into a temporary directory that
runs ``python -m blebridge.script --port sim:NAME "$@"`` (with the suite's PYTHONPATH).
Prints pass/fail and seconds per test, then one line per suite with its time, and exits 1 if
any test failed.

``--stacks A,B`` gives instance 0 (an example pair's server) and instance 1 (its client) their
BLE host (blebridge.sim.launcher.STACKS: ``bumble``, the air's Bumble host, or ``nimble``, the
real NimBLE host running the nimble port, ``make nimble-sim``): ``--stacks nimble,nimble`` is
NimBLE against NimBLE, ``nimble,bumble`` NimBLE (instance 0) against the simulator's own
boards. Default: ``bumble,bumble``. The ``zerynth`` suite starts its own boards and ignores it.

Upstream's L2CAP file pair does not work as it stands, on a board either (its client is marked
work in progress): ``l2cap_file_client.py`` looks for a service of UUID 0x1234 while the server
offers ``0492fcec-7194-11eb-9439-0242ac130002``, so the pair runs with a copy of the client whose
two UUIDs are the server's (nothing else is changed); and the server's
``send_done_notification`` packs ``op_seq``, which nothing sets (``struct.pack`` of None is a
TypeError on MicroPython too), so its L2CAP task ends after the first download and the
client's ``list()`` that follows never gets an answer. The pair passes on what can work: the
two size queries and the download.
"""
from __future__ import annotations

import argparse
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
HOST = ROOT / "host"

#: linklayer.CONN_INTERVAL_ENV: the default connection interval of an air, read when it starts.
CONN_INTERVAL_ENV = "BLEBRIDGE_SIM_CONN_INTERVAL_MS"

#: The instances' simulated boards (stable names: stable addresses).
BOARD_NAMES = ("mpy-inst0", "mpy-inst1")
#: Tests that need a real board's deep sleep or filesystem.
NEEDS_A_BOARD = ("stress_",)
#: aioble's package directory in a micropython-lib checkout (its parent goes on PYTHONPATH).
AIOBLE_DIR = Path("micropython") / "bluetooth" / "aioble"

SUITES = ("micropython", "aioble-upstream", "aioble-ours", "examples", "examples-upstream",
          "zerynth", "adafruit-ble")
#: Run when no --suite is given (when the checkout each needs is given).
DEFAULT_SUITES = SUITES[:4] + ("zerynth", "adafruit-ble")
#: What the adafruit-ble suite brings: peers and hardware stand-ins (its README.md).
CP_HARNESS = ROOT / "conformance" / "circuitpython"
#: The CircuitPython tests' scripts, some of which are peers of upstream examples.
CP_TEST_SCRIPTS = ROOT / "tests" / "circuitpython" / "scripts"

#: Default connection interval (ms) of each suite's air, for a connect that names none (the
#: air's BLEBRIDGE_SIM_CONN_INTERVAL_MS; missing: the air's own default, 50 ms as a MicroPython
#: NimBLE board, docs/simulator.md). MicroPython's multitests passed on a zero-latency air, so
#: none depends on the radio's pace: they run at the shortest interval, which keeps the suite's
#: time near that of a zero-latency air. aioble's ble_write_capture needs a radio's write
#: round trip (> 50 ms), so the aioble suites and the examples keep the board default (so does
#: the zerynth suite, not measured at 7.5 ms).
#: ``--conn-interval MS`` sets every suite's.
SUITE_CONN_INTERVAL_MS = {"micropython": 7.5}

#: The temperature pair passes once the client has printed this many readings.
TEMP_READINGS = 3
#: Seconds an example pair may take (scan 5 s, connect, discovery, readings 1 s apart).
PAIR_TIMEOUT_S = 60.0
#: Seconds between two looks at a pair's client while it runs.
POLL_S = 0.2
#: Seconds the server of a pair gets to start advertising before its client starts.
SERVER_START_S = 2.0

_RESULT = re.compile(r"^(?P<test>\S+\.py) on (?P<inst>\S+): (?P<result>pass|FAIL|skip)\s*$")

#: The boards' BLE hosts (blebridge.sim.launcher.STACKS).
STACKS = ("bumble", "nimble")


def parse_stacks(text: str) -> tuple[str, str]:
    """``A,B`` -> (A, B), each one of STACKS. Raises ValueError naming the bad one."""
    parts = tuple(p.strip() for p in text.split(","))
    if len(parts) != 2:
        raise ValueError(f"--stacks needs two stacks, one per instance (A,B), not {text!r}")
    for part in parts:
        if part not in STACKS:
            raise ValueError(f"unknown stack {part!r} in --stacks: the stacks are {', '.join(STACKS)}")
    return parts[0], parts[1]


def _port(index: int, stack: str) -> str:
    """Instance ``index``'s port spec: its board, with its BLE host named (so a
    BLEBRIDGE_SIM_STACK in the environment does not change a run's pairing)."""
    return f"sim:{BOARD_NAMES[index]}?stack={stack}"


@dataclass
class SuiteResult:
    name: str
    title: str
    total: int
    results: dict[str, str] = field(default_factory=dict)   # test -> pass | fail | skip
    note: str = ""
    seconds: float = 0.0    # wall time the suite took

    @property
    def passed(self) -> int:
        return sum(r == "pass" for r in self.results.values())

    @property
    def ok(self) -> bool:
        return self.passed == self.total and self.total > 0


def _wrapper(directory: Path, index: int, python: str, air: str, pythonpath: list[Path],
             stack: str = "bumble") -> Path:
    path = directory / f"inst{index}"
    entries = ":".join(shlex.quote(str(p)) for p in [HOST] + pythonpath)
    path.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH={entries}\n"
        f"BLEBRIDGE_AIR={shlex.quote(air)}\n"
        f"BLEBRIDGE_SECRETS_DIR={shlex.quote(str(directory / 'secrets'))}\n"
        "export PYTHONPATH BLEBRIDGE_AIR BLEBRIDGE_SECRETS_DIR\n"
        f"exec {shlex.quote(python)} -m blebridge.script "
        f"--port {shlex.quote(_port(index, stack))} \"$@\"\n")
    path.chmod(0o755)
    return path


def select_tests(directory: Path, patterns: list[str]) -> list[Path]:
    tests = sorted(p for p in directory.glob("*.py") if not p.name.startswith(NEEDS_A_BOARD))
    if patterns:
        tests = [t for t in tests if any(k in t.name for k in patterns)]
    return tests


def run_multitests(suite: SuiteResult, runner: Path, tests: list[Path], work: Path, air: str,
                   python: str, pythonpath: list[Path], trace: bool,
                   stacks: tuple[str, str] = ("bumble", "bumble")) -> SuiteResult:
    """Run ``tests`` under run-multitests.py on two simulated boards; fills suite.results."""
    directory = work / suite.name
    directory.mkdir()
    inst = [_wrapper(directory, i, python, air, pythonpath, stacks[i]) for i in range(2)]
    cmd = [python, str(runner), "-t", f"exec:{inst[0]}", "-t", f"exec:{inst[1]}",
           "-r", str(directory / "results")]
    if trace:
        cmd.append("--trace-output")
    cmd += [str(t) for t in tests]
    env = dict(os.environ, BLEBRIDGE_AIR=air)
    print(f"\n== {suite.title}", flush=True)
    proc = subprocess.Popen(cmd, cwd=runner.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    pending = ""
    test_t0 = time.monotonic()
    for line in proc.stdout:
        # run-multitests prints "FILE on A|B: " then the result after the test has run.
        text = pending + line
        m = _RESULT.match(text.strip())
        if m:
            name = Path(m.group("test")).name
            suite.results[name] = m.group("result").lower()
            now = time.monotonic()
            print(f"{name:36} {m.group('result').upper():4} {now - test_t0:5.1f} s", flush=True)
            test_t0 = now
            pending = ""
            continue
        if text.rstrip().endswith(":") and " on " in text and not text.endswith("\n\n"):
            pending = text.rstrip("\n")
            continue
        pending = ""
        print(text, end="", flush=True)
    if proc.wait() != 0 and not suite.results:
        suite.note = f"run-multitests.py exited with status {proc.returncode}"
    for t in tests:
        suite.results.setdefault(t.name, "fail")
    return suite


# -- example pairs ---------------------------------------------------------------------------

def _start(script: Path, port: str, cwd: Path, air: str, python: str,
           pythonpath: list[Path]) -> subprocess.Popen:
    env = dict(os.environ, BLEBRIDGE_AIR=air, BLEBRIDGE_SECRETS_DIR=str(cwd / "secrets"),
               PYTHONPATH=os.pathsep.join(str(p) for p in [HOST] + pythonpath))
    return subprocess.Popen([python, "-m", "blebridge.script", "--port", port, str(script)],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> str:
    """End ``proc`` (SIGINT, as Ctrl-C on a board's REPL, then SIGKILL) and return what it
    printed that was not read yet."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGINT)
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.stdout is not None
    return proc.stdout.read().decode(errors="replace")


def _read_until(proc: subprocess.Popen, done, deadline: float) -> tuple[str, bool]:
    """Read ``proc``'s output until ``done(text)`` is true (checked at least every
    POLL_S), it exits or the deadline passes."""
    assert proc.stdout is not None
    out = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], POLL_S)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
        if done(out.decode(errors="replace")):
            return out.decode(errors="replace"), True
    text = out.decode(errors="replace")
    return text, done(text)


def _show(name: str, role: str, text: str) -> None:
    for line in text.splitlines():
        print(f"  {name} {role}: {line}")


def run_pair(name: str, server: Path, client: Path, cwd: Path, air: str, python: str,
             pythonpath: list[Path], client_done, trace: bool,
             stacks: tuple[str, str] = ("bumble", "bumble")) -> bool:
    """Start ``server``, then ``client``; True when ``client_done(output, status)`` says the
    client did its job. Both are ended afterwards (the servers never end by themselves, and
    end with SIGINT: a traceback of theirs after that is the interrupt's). Their output is
    shown when the pair failed (always with ``trace``)."""
    ok = False
    srv = _start(server, _port(0, stacks[0]), cwd, air, python, pythonpath)
    cli = None
    srv_out = cli_out = ""
    try:
        srv_out, _ = _read_until(srv, lambda t: False, time.monotonic() + SERVER_START_S)
        cli = _start(client, _port(1, stacks[1]), cwd, air, python, pythonpath)
        cli_out, ok = _read_until(cli, lambda t: client_done(t, None),
                                  time.monotonic() + PAIR_TIMEOUT_S)
        if not ok:
            try:
                status = cli.wait(1)
            except subprocess.TimeoutExpired:
                status = None
            ok = client_done(cli_out, status)
        return ok
    finally:
        if cli is not None:
            cli_out += _stop(cli)
        srv_out += _stop(srv)
        if trace or not ok:
            _show(name, "server", srv_out)
            _show(name, "client", cli_out)


def run_examples(suite: SuiteResult, examples: Path, work: Path, air: str, python: str,
                 pythonpath: list[Path], patterns: list[str], trace: bool,
                 stacks: tuple[str, str] = ("bumble", "bumble")) -> SuiteResult:
    print(f"\n== {suite.title}", flush=True)
    pairs = []

    def temp_done(out: str, status: Optional[int]) -> bool:
        return out.count("Temperature: ") >= TEMP_READINGS

    pairs.append(("temp_sensor+temp_client", examples / "temp_sensor.py",
                  examples / "temp_client.py", None, temp_done))

    work.mkdir()
    files = work / "l2cap_files"
    (files / "demo").mkdir(parents=True)
    (files / "demo" / "file.txt").write_bytes(bytes(range(256)) * 8)
    client = files / "l2cap_file_client.py"
    text = (examples / "l2cap_file_client.py").read_text()
    client.write_text(text.replace("bluetooth.UUID(0x1234)",
                                   'bluetooth.UUID("0492fcec-7194-11eb-9439-0242ac130002")')
                          .replace("bluetooth.UUID(0x1235)",
                                   'bluetooth.UUID("0492fcec-7194-11eb-9439-0242ac130003")'))

    def l2cap_done(out: str, status: Optional[int]) -> bool:
        download = files / "download.txt"
        return ("result: 1 0 2048" in out and "result: 2 2 0" in out and download.exists()
                and download.read_bytes() == (files / "demo" / "file.txt").read_bytes())

    pairs.append(("l2cap_file_server+l2cap_file_client", examples / "l2cap_file_server.py",
                  client, files, l2cap_done))
    suite.total = 0
    for name, server, client_script, cwd, done in pairs:
        if patterns and not any(k in name for k in patterns):
            continue
        suite.total += 1
        ok = run_pair(name, server, client_script, cwd or work, air, python, pythonpath, done,
                      trace, stacks)
        suite.results[name] = "pass" if ok else "fail"
        print(f"{name:36} {'PASS' if ok else 'FAIL'}", flush=True)
    return suite


def run_zerynth(suite: SuiteResult, zerynth: Path, work: Path, air: str, python: str,
                patterns: list[str], trace: bool) -> SuiteResult:
    """Zerynth's examples under ``zerynth`` (conformance/zerynth/pairs.py), one by one."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "zerynth"))
    import pairs
    print(f"\n== {suite.title}", flush=True)
    work.mkdir(parents=True, exist_ok=True)
    checks = [c for c in pairs.upstream_checks() if not patterns or any(p in c.name for p in patterns)]
    suite.total = 0
    for i, check in enumerate(checks):
        if not (zerynth / check.script).is_file():
            print(f"{check.name}: FAIL ({zerynth / check.script} not found)", flush=True)
            suite.total += 1
            suite.results[check.name] = "fail"
            continue
        secrets = work / f"secrets-{i}"
        secrets.mkdir(exist_ok=True)
        outcome = pairs.run_check(check, zerynth, (f"zerynth-{i}a", f"zerynth-{i}b"),
                                  pairs.base_env(air, secrets), python)
        suite.total += 1
        suite.results[check.name] = "pass" if outcome.ok else "fail"
        print(f"{check.name}: {'pass' if outcome.ok else 'FAIL (' + outcome.why + ')'}", flush=True)
        if trace or not outcome.ok:
            _show(check.name, "zerynth", outcome.zerynth)
            if outcome.peer:
                _show(check.name, "peer", outcome.peer)
    return suite


# -- adafruit_ble's examples -----------------------------------------------------------------

#: Seconds an adafruit_ble pair may take (scans of up to 5 s, connect, discovery, pairing, the
#: exchanges checked).
CP_PAIR_TIMEOUT_S = 90.0
#: Round trips the echo pairs must show.
CP_ECHOES = 2
#: Readings the JSON central must print.
CP_READINGS = 3
#: What the HID pair types into the peripheral's stdin (its example types what it reads there).
CP_TYPED = "hello blebridge"
#: ble_demo_central.py's colour for the stand-in accelerometer's reading (hardware/adafruit_lis3dh.py).
CP_DEMO_COLOR = "(127, 0, 63)"


@dataclass
class CpPair:
    """An adafruit_ble example pair: ``server`` on the first board, ``client`` on the second."""

    name: str
    server: str                 # examples/ file; "harness:FILE" (conformance/circuitpython),
                                # "tests:FILE" (tests/circuitpython/scripts), "hr:FILE" (the
                                # heart-rate library checkout's examples/)
    client: str
    done: object                # (server output, client output) -> bool
    pythonpath: tuple = ()      # extra directories (harness ones by name: "hardware", "alias")
    #: (text the client prints when ready, text then written to the server's stdin)
    server_stdin: Optional[tuple[str, str]] = None
    #: (text the server prints, text then written to the client's stdin)
    client_stdin: Optional[tuple[str, str]] = None
    also: Optional[str] = None  # another examples/ file run alone on the second board (status 0)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


ADAFRUIT_PAIRS = (
    CpPair("ble_uart_echo_test+ble_uart_echo_client", "ble_uart_echo_test.py",
           "ble_uart_echo_client.py",
           lambda s, c: _lines(c).count("b'echo'") >= CP_ECHOES),
    CpPair("ble_json_peripheral+ble_json_central", "ble_json_peripheral.py", "ble_json_central.py",
           lambda s, c: sum(line.startswith("Sensors:  {'temperature'") for line in _lines(c))
           >= CP_READINGS and "Settings:  {'unit': 'celsius'}" in s),
    CpPair("ble_packet_buffer_test+ble_packet_buffer_client", "ble_packet_buffer_test.py",
           "ble_packet_buffer_client.py",
           lambda s, c: _lines(c).count("bytearray(b'echo')") >= CP_ECHOES, pythonpath=("alias",)),
    CpPair("ble_demo_periph+ble_demo_central", "ble_demo_periph.py", "ble_demo_central.py",
           lambda s, c: _lines(s).count(CP_DEMO_COLOR) >= CP_ECHOES, pythonpath=("hardware",)),
    CpPair("ble_hid_periph+hid_central (tests)", "ble_hid_periph.py", "tests:hid_central.py",
           lambda s, c: f"typed: {CP_TYPED}" in _lines(c),
           server_stdin=("subscribed", CP_TYPED + "\n"),
           also="ble_hid_central.py"),
    CpPair("ble_advertising_simpletest+ble_simpletest", "ble_advertising_simpletest.py",
           "ble_simpletest.py", lambda s, c: any("short_name=HELLO" in line for line in _lines(c))),
    CpPair("ble_advertising_simpletest+ble_detailed_scan", "ble_advertising_simpletest.py",
           "ble_detailed_scan.py", lambda s, c: any("short_name=HELLO" in line for line in _lines(c))),
    CpPair("ble_advertising_simpletest+connect_and_leave (harness)", "ble_advertising_simpletest.py",
           "harness:connect_and_leave.py",
           lambda s, c: "connected" in _lines(s) and "disconnected" in _lines(s),
           client_stdin=("connected", "\n")),
)


#: With --adafruit-ble-heart-rate: that library's example reading a heart-rate sensor written
#: with MicroPython's bluetooth module (tests/circuitpython/scripts/heart_rate_sensor.py).
HEART_RATE_PAIR = CpPair(
    "heart_rate_sensor (tests, MicroPython)+ble_heart_rate_simpletest", "tests:heart_rate_sensor.py",
    "hr:ble_heart_rate_simpletest.py",
    lambda s, c: "Location: Chest" in _lines(c) and "Device: blebridge HR-1" in _lines(c)
    and sum(line.startswith("HeartRateMeasurementValues(heart_rate=") for line in _lines(c))
    >= CP_READINGS)


def _cp_start(script: Path, board: str, air: str, python: str, pythonpath: list[Path],
              stdin: bool = False) -> subprocess.Popen:
    env = dict(os.environ, BLEBRIDGE_AIR=air,
               PYTHONPATH=os.pathsep.join(str(p) for p in [HOST] + pythonpath))
    proc = subprocess.Popen([python, "-m", "blebridge.script", "--port", f"sim:{board}", str(script)],
                            cwd=script.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)
    return proc


def _read_both(procs: list[subprocess.Popen], outs: list[bytes], done, deadline: float) -> bool:
    """Read the processes' output into ``outs`` until ``done(*texts)``, they all end, or the
    deadline passes."""
    while time.monotonic() < deadline:
        texts = [o.decode(errors="replace") for o in outs]
        if done(*texts):
            return True
        streams = {p.stdout.fileno(): i for i, p in enumerate(procs)
                   if p.stdout is not None and not p.stdout.closed}
        ready, _, _ = select.select(list(streams), [], [], POLL_S)
        for fd in ready:
            chunk = os.read(fd, 4096)
            if chunk:
                outs[streams[fd]] += chunk
        if not ready and all(p.poll() is not None for p in procs):
            break
    return done(*[o.decode(errors="replace") for o in outs])


def run_cp_pair(pair: CpPair, examples: Path, heart_rate_examples: Optional[Path], paths: dict,
                air: str, python: str, trace: bool) -> bool:
    def script(name: str) -> Path:
        where, _, file = name.rpartition(":")
        return {"": examples, "harness": CP_HARNESS, "tests": CP_TEST_SCRIPTS,
                "hr": heart_rate_examples}[where] / file

    extra = [paths[p] for p in pair.pythonpath]
    srv = _cp_start(script(pair.server), BOARD_NAMES[0], air, python, extra,
                    stdin=pair.server_stdin is not None)
    procs = [srv]
    outs = [b"", b""]
    ok = False
    fed: set[int] = set()

    def feed(i: int, proc: subprocess.Popen, cue: Optional[tuple[str, str]], out: str) -> None:
        # Written once, when the other side has printed the cue; the pipe stays open.
        if cue is not None and i not in fed and cue[0] in out:
            assert proc.stdin is not None
            proc.stdin.write(cue[1].encode())
            proc.stdin.flush()
            fed.add(i)

    def done(server_out: str, client_out: str) -> bool:
        # The HID example types what it reads on stdin once the client is ready to see it;
        # the advertiser's visitor leaves once the advertiser has seen it come.
        feed(0, srv, pair.server_stdin, client_out)
        if len(procs) > 1:
            feed(1, procs[1], pair.client_stdin, server_out)
        return pair.done(server_out, client_out)

    try:
        _read_both([srv], outs, lambda s, *rest: False, time.monotonic() + SERVER_START_S)
        cli = _cp_start(script(pair.client), BOARD_NAMES[1], air, python, extra,
                        stdin=pair.client_stdin is not None)
        procs.append(cli)
        ok = _read_both(procs, outs, done, time.monotonic() + CP_PAIR_TIMEOUT_S)
        return ok
    finally:
        for i, proc in enumerate(procs):
            if proc.stdin is not None:
                proc.stdin.close()
            outs[i] += _stop(proc).encode()
        if trace or not ok:
            _show(pair.name, "server", outs[0].decode(errors="replace"))
            _show(pair.name, "client", outs[1].decode(errors="replace"))


def run_adafruit_examples(suite: SuiteResult, checkout: Path, heart_rate: Optional[Path], work: Path,
                          air: str, python: str, patterns: list[str], trace: bool) -> SuiteResult:
    print(f"\n== {suite.title}", flush=True)
    examples = checkout / "examples"
    work.mkdir()
    # ble_packet_buffer_test.py imports its service as packet_buffer_service; the checkout's
    # file is ble_packet_buffer_service.py. A module of the imported name re-exports it.
    alias = work / "alias"
    alias.mkdir()
    (alias / "packet_buffer_service.py").write_text("from ble_packet_buffer_service import *  # noqa\n")
    paths = {"alias": alias, "hardware": CP_HARNESS / "hardware"}
    # Bonds go to this run's own store: the boards' names, hence addresses, are the same in
    # every run, and the HID pair pairs.
    os.environ["BLEBRIDGE_SECRETS_DIR"] = str(work / "secrets")
    heart_rate_examples = heart_rate / "examples" if heart_rate is not None else None
    pairs = ADAFRUIT_PAIRS + ((HEART_RATE_PAIR,) if heart_rate is not None else ())
    for pair in pairs:
        if patterns and not any(k in pair.name for k in patterns):
            continue
        suite.total += 1
        ok = run_cp_pair(pair, examples, heart_rate_examples, paths, air, python, trace)
        if ok and pair.also:
            # Upstream's counterpart that does nothing (all comments): it must run and end, 0.
            proc = _cp_start(examples / pair.also, BOARD_NAMES[1], air, python, [])
            try:
                ok = proc.wait(CP_PAIR_TIMEOUT_S) == 0
            except subprocess.TimeoutExpired:
                ok = False
            out = _stop(proc)
            if trace or not ok:
                _show(pair.name, pair.also, out)
        suite.results[pair.name] = "pass" if ok else "fail"
        print(f"{pair.name:56} {'PASS' if ok else 'FAIL'}", flush=True)
    return suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--micropython", type=Path, default=None,
                        help="path to a MicroPython checkout (its tests/ and tools/ are used)")
    parser.add_argument("--micropython-lib", type=Path, default=None,
                        help="path to a micropython-lib checkout (its aioble is used)")
    parser.add_argument("--zerynth", type=Path, default=None,
                        help="directory holding the lib-nordic-nrf52_ble and lib-espressif-esp32ble "
                             "checkouts (their examples are run)")
    parser.add_argument("--adafruit-ble", type=Path, default=None,
                        help="path to an Adafruit_CircuitPython_BLE checkout (its examples/ are run)")
    parser.add_argument("--adafruit-ble-heart-rate", type=Path, default=None,
                        help="with --adafruit-ble: path to an Adafruit_CircuitPython_BLE_Heart_Rate "
                             "checkout (its example runs against a heart-rate sensor of ours)")
    parser.add_argument("--suite", action="append", choices=SUITES, default=[],
                        help="run only this suite (repeatable; default: all the checkouts allow)")
    parser.add_argument("-k", action="append", default=[], metavar="NAME",
                        help="only tests whose file name contains NAME (repeatable)")
    parser.add_argument("--trace", action="store_true",
                        help="pass --trace-output to run-multitests; show example pairs' output")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the instances")
    parser.add_argument("--conn-interval", type=float, default=None, metavar="MS",
                        help="connection interval (ms) of a connect that names none, every "
                             "suite (default: 7.5 for micropython, else the air's 50)")
    parser.add_argument("--stacks", default="bumble,bumble", metavar="A,B",
                        help="BLE host of instance 0 and 1: bumble or nimble (default bumble,bumble)")
    ns = parser.parse_args(argv)
    try:
        stacks = parse_stacks(ns.stacks)
    except ValueError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2

    if ns.micropython is None and ns.adafruit_ble is None and ns.zerynth is None:
        print("conformance: give --micropython, --zerynth and/or --adafruit-ble", file=sys.stderr)
        return 2
    runner: Optional[Path] = None
    mp_tests: Optional[Path] = None
    if ns.micropython is not None:
        mp_tests = ns.micropython.resolve() / "tests"
        runner = mp_tests / "run-multitests.py"
        if not runner.is_file():
            print(f"conformance: {runner} not found; --micropython must be a MicroPython checkout",
                  file=sys.stderr)
            return 2
    aioble_parent: Optional[Path] = None
    if ns.micropython_lib is not None:
        aioble_parent = ns.micropython_lib.resolve() / AIOBLE_DIR
        if not (aioble_parent / "aioble" / "__init__.py").is_file():
            print(f"conformance: {aioble_parent / 'aioble'} not found; --micropython-lib must be "
                  "a micropython-lib checkout", file=sys.stderr)
            return 2
    adafruit: Optional[Path] = None
    if ns.adafruit_ble is not None:
        adafruit = ns.adafruit_ble.resolve()
        if not (adafruit / "examples" / "ble_uart_echo_test.py").is_file():
            print(f"conformance: {adafruit / 'examples'} has no ble_uart_echo_test.py; "
                  "--adafruit-ble must be an Adafruit_CircuitPython_BLE checkout", file=sys.stderr)
            return 2

    if ns.adafruit_ble_heart_rate is not None and not (
            ns.adafruit_ble_heart_rate / "examples" / "ble_heart_rate_simpletest.py").is_file():
        print(f"conformance: {ns.adafruit_ble_heart_rate / 'examples'} has no "
              "ble_heart_rate_simpletest.py; --adafruit-ble-heart-rate must be an "
              "Adafruit_CircuitPython_BLE_Heart_Rate checkout", file=sys.stderr)
        return 2

    def available(suite: str) -> bool:
        if suite == "adafruit-ble":
            return adafruit is not None
        if suite == "zerynth":
            return ns.zerynth is not None
        if suite == "micropython":
            return runner is not None
        return runner is not None and aioble_parent is not None

    suites = ns.suite or [s for s in DEFAULT_SUITES if available(s)]
    missing = [s for s in suites if not available(s)]
    if missing:
        print(f"conformance: suite {missing[0]} needs "
              + ("--adafruit-ble" if missing[0] == "adafruit-ble" else
                 "--zerynth" if missing[0] == "zerynth" else
                 "--micropython" if missing[0] == "micropython" else
                 "--micropython and --micropython-lib"), file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="blebridge-conformance-"))
    saved_interval = os.environ.get(CONN_INTERVAL_ENV)
    # The instances' bonds go to a store of this run only, as on freshly flashed boards: in
    # the user's store, a bond one instance's board kept while its peer's had gone (seen
    # here, cause not traced) made ble_gap_pair re-encrypt with it and fail in every later run.
    os.environ["BLEBRIDGE_SECRETS_DIR"] = str(work / "secrets")
    results: list[SuiteResult] = []
    t0 = time.monotonic()
    try:
        for name in suites:
            suite_t0 = time.monotonic()
            # An air of the suite's own: the launcher starts it with this process's environment.
            air = str(work / f"{name}.sock")
            interval = ns.conn_interval or SUITE_CONN_INTERVAL_MS.get(name)
            if interval is not None:
                os.environ[CONN_INTERVAL_ENV] = f"{interval:g}"
            elif saved_interval is None:
                os.environ.pop(CONN_INTERVAL_ENV, None)
            else:
                os.environ[CONN_INTERVAL_ENV] = saved_interval
            if name == "adafruit-ble":
                assert adafruit is not None
                suite = SuiteResult(name, "adafruit_ble examples (Adafruit_CircuitPython_BLE), "
                                    "blebridge's _bleio", 0)
                hr = ns.adafruit_ble_heart_rate.resolve() if ns.adafruit_ble_heart_rate else None
                run_adafruit_examples(suite, adafruit, hr, work / name, air, ns.python, ns.k,
                                      ns.trace)
            elif name == "micropython":
                assert mp_tests is not None and runner is not None
                tests = select_tests(mp_tests / "multi_bluetooth", ns.k)
                suite = SuiteResult(name, "MicroPython tests/multi_bluetooth", len(tests))
                if tests:
                    run_multitests(suite, runner, tests, work, air, ns.python, [], ns.trace,
                                   stacks)
            elif name in ("aioble-upstream", "aioble-ours"):
                assert aioble_parent is not None and runner is not None
                tests = select_tests(aioble_parent / "multitests", ns.k)
                upstream = name == "aioble-upstream"
                title = ("aioble multitests, upstream aioble (PYTHONPATH)" if upstream
                         else "aioble multitests, blebridge's aioble")
                suite = SuiteResult(name, title, len(tests))
                if tests:
                    run_multitests(suite, runner, tests, work, air, ns.python,
                                   [aioble_parent] if upstream else [], ns.trace, stacks)
            elif name == "zerynth":
                suite = SuiteResult(name, "Zerynth's BLE examples, checked by MicroPython peers", 0)
                run_zerynth(suite, ns.zerynth.resolve(), work / name, air, ns.python, ns.k, ns.trace)
            else:
                assert aioble_parent is not None
                upstream = name == "examples-upstream"
                title = ("aioble examples as pairs, upstream aioble (PYTHONPATH)" if upstream
                         else "aioble examples as pairs, blebridge's aioble")
                suite = SuiteResult(name, title, 0)
                run_examples(suite, aioble_parent / "examples", work / name, air, ns.python,
                             [aioble_parent] if upstream else [], ns.k, ns.trace, stacks)
            suite.seconds = time.monotonic() - suite_t0
            results.append(suite)
        elapsed = time.monotonic() - t0
        print()
        if stacks != ("bumble", "bumble"):
            print(f"conformance: instance 0 on {stacks[0]}, instance 1 on {stacks[1]}")
        for suite in results:
            unit = ("pairs" if suite.name.startswith(("examples", "adafruit")) else
                    "examples" if suite.name == "zerynth" else "tests")
            print(f"conformance: {suite.title}: {suite.passed}/{suite.total} {unit} passed"
                  f" in {suite.seconds:.0f} s" + (f" ({suite.note})" if suite.note else ""))
            for test, result in suite.results.items():
                if result != "pass":
                    print(f"  {result.upper():4} {test}")
        print(f"conformance: {elapsed:.0f} s")
        return 0 if results and all(s.ok for s in results) else 1
    finally:
        if saved_interval is None:
            os.environ.pop(CONN_INTERVAL_ENV, None)
        else:
            os.environ[CONN_INTERVAL_ENV] = saved_interval
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
