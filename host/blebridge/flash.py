"""`blebridge flash`: build the firmware with PlatformIO, upload it, and check the board answers.

    blebridge flash [--board KIND] [--port P] [--project-dir DIR] [--no-verify]

Steps:
1. the port: --port (or $BLEBRIDGE_PORT); ``auto`` picks the first known board, bootloaders
   included; ``id:SERIAL`` selects by USB serial number.
2. the board kind: --board, else the port's USB VID:PID (blebridge.ports.KNOWN_BOARDS). A generic
   USB-UART bridge (CP210x, CH340, ...) usually carries an ESP32 DevKit; its kind is confirmed by
   a handshake when our firmware already runs on it, else assumed to be ``esp32dev`` (said so).
   The Feather nRF52840 and the nRF52840 Dongle with the Adafruit bootloader share VID:PIDs
   (ports.SHARED_NRF_VID_PIDS): the USB product string tells them apart, else the handshake,
   else --board is asked for. A dongle in Nordic's own bootloader is refused (it cannot take the
   upload) with the steps to install the Adafruit one.
3. ``pio run -e ENV -t upload --upload-port P`` from the checkout's platformio.ini, its output
   streamed as it comes (that is the progress).
4. open the board and check the handshake's protocol version against this host's.

PlatformIO missing, the port busy, permission denied: each raises CliError saying what to do.
On Linux, boards need the udev rules in blebridge/udev/99-blebridge.rules (see ``udev_rules_path``).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from . import protocol as P
from .cli import CliError, port_arg
from .errors import BlebridgeError, PortOpenError
from .ports import (KNOWN_BOARDS, SHARED_NRF_VID_PIDS, PortInfo, find_by_serial, list_ports,
                    shared_nrf_kind)
from .transport.serial_port import classify_open_error

#: PlatformIO environment of each board kind. Keys: the env names themselves and the kinds
#: blebridge.ports reports (``blebridge list``).
BOARD_ENVS: dict[str, str] = {
    "feather_nrf52840": "feather_nrf52840",
    "feather-nrf52840": "feather_nrf52840",
    "nrf52840_dongle": "nrf52840_dongle",
    "nrf52840-dongle": "nrf52840_dongle",
    "esp32dev": "esp32dev",
    "esp32": "esp32dev",
    "esp32?": "esp32dev",
    "esp32s3": "esp32s3",
    "esp32-s3": "esp32s3",
}
ENVS = ("feather_nrf52840", "nrf52840_dongle", "esp32dev", "esp32s3")

PIO_INSTALL_HINT = ("install PlatformIO: pip install platformio (or pip install 'blebridge[flash]'), "
                    "then make sure `pio` is on PATH")
UDEV_HINT = ("on Linux, install the udev rules shipped with blebridge: "
             "sudo cp {path} /etc/udev/rules.d/ && sudo udevadm control --reload-rules && "
             "sudo udevadm trigger; or " + PortOpenError.HINT_PERMISSION)
#: Seconds to wait for the board to come back (re-enumerate, boot) after the upload.
REOPEN_TIMEOUT_S = 15.0
REOPEN_POLL_S = 0.5
#: Handshake timeout (s) when probing an unknown USB-UART bridge before flashing.
PROBE_TIMEOUT_S = 2.0
#: The nRF52840 envs, which SHARED_NRF_VID_PIDS may carry.
NRF_ENVS = ("feather_nrf52840", "nrf52840_dongle")
#: Nordic's open USB DFU bootloader of the nRF52840 Dongle (nRF5 SDK): the nrf52840_dongle env
#: uploads with adafruit-nrfutil's serial DFU, which that bootloader does not speak.
NORDIC_OPEN_BOOTLOADER = (0x1915, 0x521F)
NORDIC_BOOTLOADER_HINT = ("install the Adafruit nRF52 bootloader for pca10059 on the dongle once, "
                          "with Nordic's nrfutil (firmware/ports/nrf_sd/README.md, nRF52840 "
                          "Dongle, option 1), then run blebridge flash again")


def udev_rules_path() -> Path:
    """The udev rules file shipped in the package."""
    return Path(__file__).resolve().parent / "udev" / "99-blebridge.rules"


# -- PlatformIO ----------------------------------------------------------------------------

def find_pio() -> list[str]:
    """The command line prefix that runs PlatformIO; CliError when it is not installed."""
    for name in ("pio", "platformio"):
        path = shutil.which(name)
        if path:
            return [path]
    # Installed into this interpreter (pip install platformio) but its scripts not on PATH.
    if importlib.util.find_spec("platformio") is not None:
        return [sys.executable, "-m", "platformio"]
    raise CliError("PlatformIO is not installed (no `pio` on PATH, no platformio module)", PIO_INSTALL_HINT)


def find_project_dir(explicit: Optional[str] = None) -> Path:
    """The directory holding blebridge's platformio.ini: --project-dir, $BLEBRIDGE_FIRMWARE_DIR,
    the source checkout this package runs from, or the current directory."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get("BLEBRIDGE_FIRMWARE_DIR"):
        candidates.append(Path(os.environ["BLEBRIDGE_FIRMWARE_DIR"]))
    else:
        candidates += [Path(__file__).resolve().parents[2], Path.cwd()]
    for c in candidates:
        if (c / "platformio.ini").is_file() and (c / "firmware").is_dir():
            return c
    raise CliError(
        "no blebridge firmware sources found (looked for platformio.ini in "
        + ", ".join(str(c) for c in candidates) + ")",
        "flash from a clone of the blebridge repository, or pass --project-dir <clone> "
        "(or set BLEBRIDGE_FIRMWARE_DIR)")


def pio_upload_command(pio: Sequence[str], project_dir: Path, env: str, port: str) -> list[str]:
    """The PlatformIO command that builds ``env`` and uploads it through ``port``."""
    return [*pio, "run", "--project-dir", str(project_dir), "--environment", env,
            "--target", "upload", "--upload-port", port]


def _print_now(line: str) -> None:
    print(line, flush=True)


def run_streaming(cmd: Sequence[str], out: Callable[[str], None] = _print_now) -> tuple[int, list[str]]:
    """Run ``cmd``, passing each output line to ``out`` as it arrives (a progress update ended
    by a carriage return counts as a line). Returns (exit code, the last lines) for the error
    message."""
    tail: list[str] = []
    # PlatformIO and its uploaders are Python: into a pipe their output would be block-buffered
    # and the build and upload progress would come all at once at the end.
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1, errors="replace", env=env)
    except FileNotFoundError as exc:
        raise CliError(f"cannot run {cmd[0]}: {exc}", PIO_INSTALL_HINT) from exc
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        out(line)
        tail = (tail + [line])[-20:]
    return proc.wait(), tail


# -- ports and board kinds ------------------------------------------------------------------

def _port_info(device: str, ports: Sequence[PortInfo]) -> Optional[PortInfo]:
    real = os.path.realpath(device) if "://" not in device else device
    for p in ports:
        if p.device in (device, real):
            return p
    return None


def resolve_port(spec: str, ports: Optional[Sequence[PortInfo]] = None) -> tuple[str, Optional[PortInfo]]:
    """(device or URL to upload through, its PortInfo when it is a local USB port)."""
    ports = list(list_ports()) if ports is None else list(ports)
    if spec == "auto":
        known = [p for p in ports if p.known is not None]
        if not known:
            raise CliError("no known board found on any USB port",
                           "plug the board in, run `blebridge list`, or pass --port and --board")
        return known[0].device, known[0]
    if spec.startswith("id:"):
        try:
            p = find_by_serial(spec[3:])
        except LookupError as exc:
            raise CliError(str(exc), "run `blebridge list` to see the serial numbers") from exc
        return p.device, p
    if spec.startswith("sim:"):
        raise CliError(f"{spec} is a simulated board: it runs the native build, nothing to flash",
                       "rebuild it with `make firmware`")
    info = _port_info(spec, ports)
    if info is None and "://" not in spec and not os.path.exists(spec):
        raise CliError(f"cannot flash {spec}: no such port", PortOpenError.HINT_NO_SUCH_PORT)
    return spec, info


def detect_env(info: Optional[PortInfo], port: str,
               probe: Optional[Callable[[str], Optional[str]]] = None) -> tuple[str, str]:
    """(PlatformIO env, how it was found) for the board on ``port``.

    A certain VID:PID decides alone; a generic USB-UART bridge is confirmed by ``probe(port)``
    (the board kind our firmware reports in the handshake, None when nothing answers)."""
    if info is None or info.known is None:
        ids = f" (USB {info.vid_pid})" if info is not None and info.vid_pid else ""
        raise CliError(f"cannot tell which board is on {port}{ids}",
                       "pass --board with one of: " + ", ".join(ENVS))
    kind = info.known
    _refuse_nordic_bootloader(info, port)
    if (info.vid, info.pid) in SHARED_NRF_VID_PIDS:
        return _shared_nrf_env(info, port, probe)
    if kind.certain:
        return BOARD_ENVS[kind.kind], f"USB {info.vid_pid}: {kind.description}"
    reported = probe(port) if probe is not None else None
    if reported is not None and reported in BOARD_ENVS:
        return BOARD_ENVS[reported], f"USB {info.vid_pid} ({kind.description}), handshake says {reported}"
    return ("esp32dev", f"USB {info.vid_pid} ({kind.description}): assumed an ESP32 DevKit; "
            "pass --board if it is something else")


def _refuse_nordic_bootloader(info: Optional[PortInfo], port: str) -> None:
    """CliError for a dongle in Nordic's open bootloader: nothing here can upload to it."""
    if info is not None and (info.vid, info.pid) == NORDIC_OPEN_BOOTLOADER:
        raise CliError(f"the nRF52840 Dongle on {port} runs Nordic's open DFU bootloader (USB "
                       f"{info.vid_pid}), which the nrf52840_dongle upload cannot use",
                       NORDIC_BOOTLOADER_HINT)


def _shared_nrf_env(info: PortInfo, port: str,
                    probe: Optional[Callable[[str], Optional[str]]]) -> tuple[str, str]:
    """Feather nRF52840 or nRF52840 Dongle on a VID:PID both show: by the USB product string,
    else by the handshake of our firmware (not in a bootloader), else ask for --board."""
    product = info.product or ""
    kind = shared_nrf_kind(product)
    if kind is not None:
        return BOARD_ENVS[kind], f"USB {info.vid_pid}, product {product!r}"
    in_bootloader = info.known is not None and info.known.bootloader
    reported = probe(port) if probe is not None and not in_bootloader else None
    if reported is not None and BOARD_ENVS.get(reported) in NRF_ENVS:
        return BOARD_ENVS[reported], f"USB {info.vid_pid}, handshake says {reported}"
    raise CliError(f"cannot tell the Feather nRF52840 from the nRF52840 Dongle on {port}: both "
                   f"show USB {info.vid_pid}, and the product string {product!r} names neither",
                   "pass --board feather_nrf52840 or --board nrf52840_dongle")


def probe_board_kind(port: str) -> Optional[str]:
    """The board kind our firmware on ``port`` reports, or None (no firmware, or cannot open)."""
    from .rpc import open_board
    try:
        with open_board(port, timeout=PROBE_TIMEOUT_S) as board:
            return board.info.board
    except BlebridgeError:
        return None


def check_port_free(port: str) -> None:
    """CliError when ``port`` is busy or not accessible (PlatformIO's own message is cryptic)."""
    if "://" in port:
        return  # a remote port is checked by the uploader itself
    import serial
    try:
        ser = serial.Serial(port, exclusive=True)
    except serial.SerialException as exc:
        e = classify_open_error(port, exc)
        # Flashing a port nobody may open needs the udev rules, not only the dialout group.
        hint = UDEV_HINT.format(path=udev_rules_path()) if e.hint == PortOpenError.HINT_PERMISSION else e.hint
        raise CliError(f"cannot flash {port}: {e.reason}", hint) from exc
    ser.close()


# -- after the upload --------------------------------------------------------------------------

def _reopen_spec(port: str, info: Optional[PortInfo]) -> str:
    # A board leaving its bootloader changes PID (and maybe device path); its serial number stays.
    if info is not None and info.serial_number and info.known is not None and info.known.bootloader:
        return f"id:{info.serial_number}"
    return port


def verify(port: str, timeout_s: float = REOPEN_TIMEOUT_S) -> tuple[int, int]:
    """Open the freshly flashed board and check its protocol major; returns its version."""
    from .rpc import open_board
    deadline = time.monotonic() + timeout_s
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            with open_board(port) as board:
                proto = board.info.proto
            break
        except BlebridgeError as exc:
            last = exc
            time.sleep(REOPEN_POLL_S)
    else:
        raise CliError(f"the board on {port} did not answer after flashing: {last}",
                       "press its reset button and run `blebridge info --port " + port + "`")
    if proto[0] != P.PROTO_MAJOR:
        raise CliError(f"flashed firmware speaks protocol {proto[0]}.{proto[1]}, this host "
                       f"{P.PROTO_MAJOR}.{P.PROTO_MINOR}",
                       "update the checkout (git pull) so host and firmware match, then flash again")
    return proto


# -- command ----------------------------------------------------------------------------------

def flash(port_spec: str, board: Optional[str] = None, project_dir: Optional[str] = None,
          verify_after: bool = True, out: Callable[[str], None] = _print_now) -> int:
    """Build, upload and verify; returns 0 or raises CliError."""
    pio = find_pio()
    project = find_project_dir(project_dir)
    port, info = resolve_port(port_spec)
    _refuse_nordic_bootloader(info, port)
    if board is not None:
        if board not in BOARD_ENVS:
            raise CliError(f"unknown board kind {board!r}", "choose one of: " + ", ".join(ENVS))
        env, why = BOARD_ENVS[board], "--board"
    else:
        env, why = detect_env(info, port, probe_board_kind)
    check_port_free(port)
    out(f"flashing {env} on {port} ({why})")
    code, tail = run_streaming(pio_upload_command(pio, project, env, port), out)
    if code != 0:
        text = "\n".join(tail).lower()
        hint = "read PlatformIO's output above"
        if "could not open port" in text or "permission denied" in text:
            hint = UDEV_HINT.format(path=udev_rules_path())
        elif "unknownplatform" in text or "could not install" in text or "httpclienterror" in text:
            hint = "PlatformIO could not download the platform: check the network, then retry"
        raise CliError(f"pio run -e {env} -t upload failed (exit code {code})", hint)
    if not verify_after:
        return 0
    proto = verify(_reopen_spec(port, info))
    out(f"ok: {env} on {port} answers, protocol {proto[0]}.{proto[1]}")
    return 0


def _cmd_flash(args: argparse.Namespace) -> int:
    return flash(port_arg(args), board=args.board, project_dir=args.project_dir, verify_after=not args.no_verify)


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser(
        "flash", help="build the firmware with PlatformIO and upload it to a board",
        description="Build with PlatformIO, upload, then check the board's protocol version. "
                    f"Linux users: udev rules are in {udev_rules_path()}.")
    p.add_argument("--board", choices=sorted(BOARD_ENVS), metavar="KIND",
                   help="board kind (default: from the port's USB VID:PID): " + ", ".join(ENVS))
    p.add_argument("--port", help="device path, rfc2217://HOST:PORT, id:SERIAL or auto "
                                  "(default: $BLEBRIDGE_PORT, else auto)")
    p.add_argument("--project-dir", help="blebridge checkout with platformio.ini "
                                         "(default: $BLEBRIDGE_FIRMWARE_DIR, else this package's checkout)")
    p.add_argument("--no-verify", action="store_true", help="skip the handshake after uploading")
    p.set_defaults(func=_cmd_flash)


__all__ = ["add_parser", "flash", "find_pio", "detect_env", "resolve_port", "pio_upload_command",
           "udev_rules_path", "BOARD_ENVS", "KNOWN_BOARDS", "CliError"]
