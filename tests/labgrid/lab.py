"""A labgrid lab on localhost for the tests: a coordinator, an exporter, simulated boards.

The exporter serves each board's pseudo-terminal as a ``RawSerialPort`` (an exporter serves
``USBSerialPort``s found by udev in a real lab; the export is the same): when a place holding it
is acquired, the exporter starts ser2net for it and the coordinator lists it as a
``NetworkSerialPort`` (rfc2217). Every port is chosen at run time: the coordinator listens on
port 0 and prints the one it got, ser2net's ports are picked by the exporter.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

#: Seconds for the coordinator to listen and the exporter's resources to reach it (both start
#: Python with grpc: seconds on a loaded machine).
START_TIMEOUT_S = 90.0
POLL_S = 0.1
#: Seconds a server gets to exit after SIGTERM before SIGKILL.
STOP_TIMEOUT_S = 10.0

BIN = Path(sys.executable).parent


def labgrid_tool(name: str) -> str:
    return str(BIN / name)


@dataclass
class Lab:
    address: str                       # coordinator HOST:PORT
    exporter: str                      # exporter name
    places: list[str]                  # one place per board, in board order
    ptys: list[str]
    env_file: Path                     # labgrid environment naming the places
    workdir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def client(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        """Run labgrid-client against this lab's coordinator."""
        return subprocess.run([labgrid_tool("labgrid-client"), "-x", self.address, *args],
                              capture_output=True, text=True, timeout=START_TIMEOUT_S, check=check,
                              env={**os.environ, **env}, cwd=self.workdir)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_group(proc)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group the server leads (the exporter's ser2net children are in it),
    then SIGKILL what is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_TIMEOUT_S)


def _start(args: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LG_COORDINATOR", None)
    env.pop("LG_ENV", None)
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd, env=env, start_new_session=True)


def _wait_for(what: str, ready, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what} not ready within {START_TIMEOUT_S:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(POLL_S)


def start_coordinator(workdir: Path) -> tuple[subprocess.Popen, str]:
    log = workdir / "coordinator.log"
    proc = _start([labgrid_tool("labgrid-coordinator"), "-l", "127.0.0.1:0"], log, workdir)
    found: dict[str, str] = {}

    def listening() -> bool:
        m = re.search(r"listening on (\S+):(\d+)", log.read_text())
        if m:
            found["address"] = f"127.0.0.1:{m.group(2)}"
        return bool(m)
    try:
        _wait_for("labgrid-coordinator", listening, proc, log)
    except BaseException:
        stop_group(proc)
        raise
    return proc, found["address"]


def exporter_config(ptys: list[str]) -> str:
    """The exporter's resource file: group bb-N holds board N's serial port."""
    lines = []
    for i, pty in enumerate(ptys):
        lines += [f"bb-{i}:", "  RawSerialPort:", f"    port: {pty}", "    speed: 115200"]
    return "\n".join(lines) + "\n"


def env_config(address: str, places: list[str]) -> str:
    """A labgrid environment naming the places, as `make hil` users write one (hil/README.md)."""
    lines = ["imports:", "  - blebridge.labgrid.driver", "options:",
             f"  coordinator_address: {address}", "targets:"]
    for place in places:
        lines += [f"  {place}:", "    resources:", "      RemotePlace:", f"        name: {place}",
                  "    drivers:", "      BlebridgeDriver: {}"]
    return "\n".join(lines) + "\n"


def start_lab(workdir: Path, ptys: list[str], prefix: str) -> Lab:
    """Coordinator + exporter serving ``ptys``, and one place per board (``PREFIX-N``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    coord, address = start_coordinator(workdir)
    exporter = f"{prefix}-exporter"
    lab = Lab(address=address, exporter=exporter, places=[], ptys=ptys,
              env_file=workdir / "env.yaml", workdir=workdir, procs=[coord])
    try:
        (workdir / "exporter.yaml").write_text(exporter_config(ptys))
        log = workdir / "exporter.log"
        exp = _start([labgrid_tool("labgrid-exporter"), "-c", address, "-n", exporter,
                      "--hostname", "127.0.0.1", str(workdir / "exporter.yaml")], log, workdir)
        lab.procs.append(exp)

        def exported() -> bool:
            out = lab.client("resources", check=False).stdout
            return all(f"{exporter}/bb-{i}/NetworkSerialPort" in out for i in range(len(ptys)))
        _wait_for("labgrid-exporter", exported, exp, log)
        for i in range(len(ptys)):
            place = f"{prefix}-{i}"
            lab.client("-p", place, "create")
            lab.client("-p", place, "add-match", f"{exporter}/bb-{i}/*")
            lab.places.append(place)
        lab.env_file.write_text(env_config(address, lab.places))
    except BaseException:
        lab.stop()
        raise
    return lab


def release_all(lab: Lab) -> None:
    """Release every place of the lab, whoever holds it (a test that failed midway)."""
    from blebridge.labgrid.coordinator import Coordinator
    with Coordinator(lab.address) as coord:
        for place in lab.places:
            if coord.acquired_by(place):
                coord.release(place)


def place_holder(lab: Lab, place: str) -> Optional[str]:
    """Who holds the place (host/user), None when free."""
    from blebridge.labgrid.coordinator import Coordinator
    with Coordinator(lab.address) as coord:
        return coord.acquired_by(place)


def acquire_as(lab: Lab, place: str, user: Optional[str] = None) -> None:
    """Acquire the place as this host's ``user`` (default: this user), as labgrid-client would."""
    from blebridge.labgrid.coordinator import Coordinator
    saved = os.environ.get("LG_USERNAME")
    if user is not None:
        os.environ["LG_USERNAME"] = user
    try:
        with Coordinator(lab.address) as coord:
            coord.acquire(place)
    finally:
        if user is not None:
            if saved is None:
                os.environ.pop("LG_USERNAME", None)
            else:
                os.environ["LG_USERNAME"] = saved
