"""Zerynth BLE scripts checked by peers written with another API, on simulated boards.

Each check runs a Zerynth script (``blebridge run --api zerynth``) on one simulated board and,
for most, a peer (peers/, MicroPython ``bluetooth`` under ``blebridge run --api micropython``)
on another, on one air. The check passes when the peer prints "PEER PASS" and exits 0, and
the Zerynth script printed every expected line fragment (``{PEER_ADDR}`` in one is the address
the peer printed as "PEER ADDR ..."), all within the check's timeout.

Used by conformance/run_conformance.py (suite ``zerynth``: Zerynth's own examples from the
fetched repositories, unmodified) and tests/zerynth (examples/zerynth, blebridge's own scripts
in Zerynth style). Nothing here fetches anything.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "host") not in sys.path:
    sys.path.insert(0, str(ROOT / "host"))
PEERS = Path(__file__).resolve().parent / "peers"
#: Seconds a Zerynth script gets to print its first line (open the board, start the radio).
READY_TIMEOUT_S = 60.0
#: Seconds a check may take once both sides run (the slowest: Eddystone's 25 s cycle).
CHECK_TIMEOUT_S = 150.0
#: Seconds a process gets to end after each signal when a check stops it.
STOP_TIMEOUT_S = 10.0


@dataclass
class Check:
    """One Zerynth script and how it is checked."""

    name: str
    script: str                                   #: path, relative to the directory given
    peer: Optional[list[str]] = None              #: peer script (in peers/) and its arguments
    expect: list[str] = field(default_factory=list)   #: fragments of the Zerynth output
    peer_expect: list[str] = field(default_factory=list)  #: fragments of the peer's output
    env: dict[str, str] = field(default_factory=dict)
    ends: bool = False                            #: the script ends by itself (exit status 0)


def _peripheral(name: str, script: str, mode: str, adv_name: str, expect: list[str],
                extra: list[str] = (), env: Optional[dict] = None) -> Check:
    return Check(name, script, ["central.py", mode, adv_name, *extra], expect, env=env or {})


def _checks(kind: str, prefix: str, path: str) -> list[Check]:
    """The checks of one set of scripts: ``kind`` "nrf52" or "esp32" (Zerynth's examples) or
    "ours"; ``path`` format of a script's path from its example name."""
    p = path.format
    secure2 = "BLE_Alerts_Secure_2"
    checks = [
        _peripheral(f"{prefix}BLE_Battery_Service", p("BLE_Battery_Service"), "battery", "Zerynth", ["."]),
        Check(f"{prefix}BLE_Scanner", p("BLE_Scanner"), ["advertiser.py", "zpeer", "15"],
              ["Detected packet from {PEER_ADDR}"]),
        _peripheral(f"{prefix}BLE_Alerts", p("BLE_Alerts"), "alerts", "ZNotifier",
                    ["Connected to", "Adding a new notification", "Value changed to 2 0",
                     "Notifications disabled", "Value changed to 0 0", "Notifications enabled",
                     "Disconnected from"]),
        _peripheral(f"{prefix}BLE_Alerts_Secure_1", p("BLE_Alerts_Secure_1"), "secure1", "ZNotifier",
                    ["ENTER THIS PIN ON THE MASTER: 225575", "Adding a new notification",
                     "Notifications disabled"], ["225575"]),
        _peripheral(f"{prefix}{secure2}", p(secure2), "secure2", "ZNotifier",
                    ["CAN WE PROCEED? PRESS BUTTON FOR YES", "Confirmed!", "Adding a new notification",
                     "Notifications disabled"], env={"BLEBRIDGE_ZERYNTH_PINS": "BTN0=1"}),
        _peripheral(f"{prefix}{secure2}(not confirmed)", p(secure2), "reject2", "ZNotifier",
                    ["CAN WE PROCEED? PRESS BUTTON FOR YES", "Not confirmed!"]),
    ]
    if kind == "nrf52":
        return checks
    if kind == "esp32":
        checks = checks[1:]     # Zerynth's esp32ble has no Battery Service example
    checks += [
        # Zerynth's Hello_BLE is callbacks only (its main code is missing upstream): it runs
        # and ends. Ours advertises a 128-bit service for 2 s and ends.
        Check(f"{prefix}Hello_BLE", p("Hello_BLE"), ends=True,
              expect=["Advertising started", "Greeting is Hello BLE", "Bye"] if kind == "ours" else []),
        Check(f"{prefix}Eddystone_Beacon", p("Eddystone_Beacon"), ["observer.py", "120", "EDDY-UID,EDDY-URL,EDDY-TLM"],
              ["Advertising stopped", "Advertising restarted with"],
              peer_expect=["PEER EDDY-UID 5a6572796e7468000000 507974686f6e -69",
                           "PEER EDDY-URL https://www.zerynth.com -69", "PEER EDDY-TLM 40 23.20 1 "]),
        Check(f"{prefix}iBeacon_Beacon", p("iBeacon_Beacon"), ["observer.py", "60", "IBEACON"],
              peer_expect=["PEER IBEACON fb0b57a2822844cd913a94a122ba1206 10 3 -69"]),
        Check(f"{prefix}Eddystone_Reader", p("Eddystone_Reader"), ["beacon.py", "eddystone", "8"],
              ["Eddy URL found with https://example.org/ -20",
               "Eddy UID found with ['0x00', '0x01', '0x02', '0x03', '0x04', '0x05', '0x06', '0x07', "
               "'0x08', '0x09'] ['0xA0', '0xA1', '0xA2', '0xA3', '0xA4', '0xA5'] -30",
               "Eddy LTM found with 3000 21.5 17 12.3", "Scan stopped"]),
        Check(f"{prefix}iBeacon_Reader", p("iBeacon_Reader"), ["beacon.py", "ibeacon", "8"],
              ["iBeacon found with ['0xE2', '0xC5', '0x6D', '0xB5', '0xDF', '0xFB', '0x48', '0xD2', "
               "'0xB0', '0x60', '0xD0', '0xF5', '0xA7', '0x10', '0x96', '0xE0'] 7 42 -59", "Scan stopped"]),
    ]
    return checks


def upstream_checks() -> list[Check]:
    """Zerynth's own examples: nRF52 driver examples, then ESP32's, under ZERYNTH's directory
    (holding lib-nordic-nrf52_ble and lib-espressif-esp32ble as fetched)."""
    return (_checks("nrf52", "nrf52/", "lib-nordic-nrf52_ble/examples/{}/main.py")
            + _checks("esp32", "esp32/", "lib-espressif-esp32ble/examples/{}/main.py"))


#: examples/zerynth scripts by the Zerynth example they stand for.
OURS = {
    "BLE_Battery_Service": "battery_service.py", "BLE_Scanner": "scanner.py", "BLE_Alerts": "alerts.py",
    "BLE_Alerts_Secure_1": "alerts_secure_passkey.py", "BLE_Alerts_Secure_2": "alerts_secure_confirm.py",
    "Hello_BLE": "hello_ble.py", "Eddystone_Beacon": "eddystone_beacon.py",
    "iBeacon_Beacon": "ibeacon_beacon.py", "Eddystone_Reader": "eddystone_reader.py",
    "iBeacon_Reader": "ibeacon_reader.py",
}


def our_checks() -> list[Check]:
    """blebridge's own Zerynth-style scripts (examples/zerynth), checked the same way."""
    checks = _checks("ours", "", "{}")
    for c in checks:
        c.script = OURS[c.script]
    return checks


# -- running -------------------------------------------------------------------------------------

class Process:
    """A ``blebridge run`` process; its output (stdout and stderr) collected line by line."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.ended = False
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        self.proc.wait()
        with self.cond:
            self.ended = True
            self.cond.notify_all()

    @property
    def output(self) -> str:
        with self.cond:
            return "".join(self.lines)

    def wait_for(self, predicate, deadline: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self), max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        # SIGINT first: the run closes its boards (a simulated board left advertising would
        # be found by the next check's peer), then harder.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        with self.cond:
            self.cond.wait_for(lambda: self.ended, 10)


@dataclass
class Outcome:
    ok: bool
    why: str
    zerynth: str
    peer: str


def run_check(check: Check, directory: Path, boards: tuple[str, str], env: dict[str, str],
              python: str = sys.executable, timeout_s: float = CHECK_TIMEOUT_S) -> Outcome:
    """Run one check: the Zerynth script (``directory``/``check.script``) on ``boards[0]``, its
    peer on ``boards[1]``; ``env`` is both processes' environment (BLEBRIDGE_AIR, PYTHONPATH,
    BLEBRIDGE_SECRETS_DIR...)."""
    script = directory / check.script
    run = [python, "-m", "blebridge.script"]
    zenv = dict(env, **check.env)
    zerynth = Process(run + ["--port", f"sim:{boards[0]}", "--api", "zerynth", str(script)], zenv, script.parent)
    peer: Optional[Process] = None
    try:
        deadline = time.monotonic() + timeout_s
        if check.ends:
            finished = zerynth.wait_for(lambda p: p.ended, deadline)
            status = zerynth.proc.returncode
            missing = [e for e in check.expect if e not in zerynth.output]
            ok = finished and status == 0 and not missing and "Traceback" not in zerynth.output
            why = (f"exit status {status}" if not finished or status != 0 else
                   f"the Zerynth script printed no {missing[0]!r}" if missing else "a traceback")
            return Outcome(ok, "" if ok else why, zerynth.output, "")
        if not zerynth.wait_for(lambda p: p.ended or bool(p.lines), time.monotonic() + READY_TIMEOUT_S):
            return Outcome(False, "the Zerynth script printed nothing", zerynth.output, "")
        if zerynth.ended:
            return Outcome(False, "the Zerynth script ended", zerynth.output, "")
        assert check.peer is not None
        # The peer looks for this board's address (a name could be another board's on the air).
        penv = dict(env, ZERYNTH_BOARD_ADDR=sim_address(boards[0]))
        peer = Process(run + ["--port", f"sim:{boards[1]}", "--api", "micropython",
                              str(PEERS / check.peer[0]), *check.peer[1:]], penv, PEERS)
        peer.wait_for(lambda p: p.ended, deadline)
        peer_out = peer.output
        if not peer.ended:
            return Outcome(False, "the peer did not finish in time", zerynth.output, peer_out)
        if peer.proc.returncode != 0 or "PEER PASS" not in peer_out:
            return Outcome(False, f"the peer failed (status {peer.proc.returncode})", zerynth.output, peer_out)
        missing_peer = [e for e in check.peer_expect if e not in peer_out]
        if missing_peer:
            return Outcome(False, f"the peer printed no {missing_peer[0]!r}", zerynth.output, peer_out)
        addr = next((ln.split("PEER ADDR ", 1)[1].strip() for ln in peer_out.splitlines()
                     if "PEER ADDR " in ln), "")
        expect = [e.replace("{PEER_ADDR}", addr) for e in check.expect]
        zerynth.wait_for(lambda p: p.ended or all(e in "".join(p.lines) for e in expect), deadline)
        missing = [e for e in expect if e not in zerynth.output]
        if zerynth.ended:
            return Outcome(False, f"the Zerynth script ended (status {zerynth.proc.returncode})",
                           zerynth.output, peer_out)
        if missing:
            return Outcome(False, f"the Zerynth script printed no {missing[0]!r}", zerynth.output, peer_out)
        if "Traceback" in zerynth.output:
            return Outcome(False, "the Zerynth script printed a traceback", zerynth.output, peer_out)
        return Outcome(True, "", zerynth.output, peer_out)
    finally:
        zerynth.stop()
        if peer is not None:
            peer.stop()


def sim_address(name: str) -> str:
    """The address of simulated board ``name``, 12 hex digits, most significant first."""
    from blebridge.sim.board import address_for_name
    return str(address_for_name(name)).split("/")[0].replace(":", "").upper()


def base_env(air: str, secrets_dir: Path) -> dict[str, str]:
    """The environment of both sides: blebridge importable, the given air, a private bond store."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "host"), env.get("PYTHONPATH", "")]))
    env["BLEBRIDGE_AIR"] = air
    env["BLEBRIDGE_SECRETS_DIR"] = str(secrets_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("BLEBRIDGE_PORT", None)
    env.pop("BLEBRIDGE_ZERYNTH_PINS", None)
    return env
