"""The `blebridge` command (also `python -m blebridge`).

Subcommands here: list, info, sim (start/list/stop), bench; run, scan, repl and flash come
from PLUGIN_MODULES. Every subcommand has a help= line (`blebridge --help`) and a description.

Adding a subcommand from another module: put the module in PLUGIN_MODULES and give it

    def add_parser(subparsers) -> None:
        p = subparsers.add_parser("run", help="...")
        p.add_argument(...)
        p.set_defaults(func=run_command)      # run_command(args) -> int | None

A plugin module that is absent is skipped (the command is simply not offered). Its command
function may raise any BlebridgeError (or CliError(message, hint)); main() prints it as
"blebridge: error: ..." plus a hint line and exits 2. `port_arg(args)` resolves --port the same
way for every command (flag, else $BLEBRIDGE_PORT, else "auto").

Errors never show a traceback unless BLEBRIDGE_DEBUG=1.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from typing import Any, Optional, Sequence

from . import __version__
from .errors import (BlebridgeError, BoardError, BoardLost, CallTimeout, PortOpenError,
                     VersionMismatch)

#: Modules that may add subcommands (see the module docstring). Order = order in --help.
PLUGIN_MODULES = ("blebridge.script.runner", "blebridge.scan", "blebridge.repl", "blebridge.flash")

PORT_ENV = "BLEBRIDGE_PORT"
DEBUG_ENV = "BLEBRIDGE_DEBUG"
PORT_HELP = (f"device path, rfc2217://HOST:PORT, socket://HOST:PORT, hwgrep://REGEXP, sim:NAME, "
             f"id:SERIAL or auto (default: ${PORT_ENV}, else auto)")
EXIT_ERROR = 2


class CliError(BlebridgeError):
    """A user-facing error of a command, with the hint line to print below it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def port_arg(args: argparse.Namespace) -> str:
    """The port a command should use: --port, else $BLEBRIDGE_PORT, else "auto"."""
    return getattr(args, "port", None) or os.environ.get(PORT_ENV) or "auto"


def _hint_for(exc: BaseException, port: Optional[str]) -> str:
    hint = getattr(exc, "hint", "")
    if hint:
        return hint
    fix_port = f" --port {port}" if port else ""
    if isinstance(exc, VersionMismatch):
        return f"run `{exc.fix}` to bring the firmware to protocol {exc.host_version[0]}.x"
    if isinstance(exc, CallTimeout):
        if exc.method == "handshake":
            if port and port.startswith("sim:"):
                return "the simulated board did not answer; rebuild it with `make firmware`"
            return (f"is blebridge firmware running on it? flash it with `blebridge flash{fix_port}`, "
                    "or check the baud rate (BLEBRIDGE_BAUD)")
        return "the board stopped answering; check the cable, then retry"
    if isinstance(exc, BoardLost):
        return "the board went away (unplugged or reset); run `blebridge list` and retry"
    if isinstance(exc, BoardError):
        return "the firmware refused the call; `blebridge info` shows its version and counters"
    return f"set {DEBUG_ENV}=1 to see the traceback"


def _print_error(exc: BaseException, port: Optional[str]) -> None:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not isinstance(exc, BlebridgeError):
        msg = f"{type(exc).__name__}: {msg}"
    print(f"blebridge: error: {msg}", file=sys.stderr)
    print(f"hint: {_hint_for(exc, port)}", file=sys.stderr)


# -- list ---------------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> int:
    from .ports import list_ports

    ports = list_ports(include_links=False)
    if args.json:
        print(json.dumps([{
            "port": p.device, "serial_number": p.serial_number, "vid_pid": p.vid_pid,
            "manufacturer": p.manufacturer, "product": p.product, "location": p.location,
            "board": p.known.kind if p.known else None,
            "board_description": p.known.description if p.known else None,
            "bootloader": p.known.bootloader if p.known else None,
        } for p in ports], indent=2))
        return 0
    if not ports:
        print("no serial ports found (a simulated board needs none: --port sim:NAME)")
        return 0
    rows = [("PORT", "SERIAL", "VID:PID", "MANUFACTURER", "PRODUCT", "BOARD")]
    for p in ports:
        board = ""
        if p.known:
            board = p.known.kind + (" (bootloader)" if p.known.bootloader else "")
        rows.append((p.device, p.serial_number or "", p.vid_pid, p.manufacturer or "",
                     p.product or "", board))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


# -- info ---------------------------------------------------------------------------------

def _format_info(port: str, board: Any, diag: dict) -> str:
    from . import protocol as P

    info = board.info
    resolved = getattr(board.transport, "blebridge_spec", None) or port
    sim_pty = getattr(getattr(board.transport, "sim_board", None), "pty", None)
    where = port if resolved == port else f"{port} ({resolved})"
    if sim_pty:
        where += f" (pty {sim_pty})"
    addr_types = {v: k.lower() for k, v in P.CONSTANTS["addr_type"].items()}
    lines = [
        f"port          {where}",
        f"board         {info.board}",
        f"firmware      {info.fw_version} (build {info.fw_build}, port {info.port})",
        f"protocol      {info.proto[0]}.{info.proto[1]} (host {P.PROTO_MAJOR}.{P.PROTO_MINOR})",
        f"address       {info.addr_str} ({addr_types.get(info.addr_type, info.addr_type)})",
        f"boot id       {info.boot_id}",
        "capabilities",
    ]
    for k, v in info.caps.items():
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v)
        elif isinstance(v, bool):
            v = "yes" if v else "no"
        lines.append(f"  {k:<18}{v}")
    board_c = {k: v for k, v in diag.items() if not k.startswith("host_")}
    host_c = {k[5:]: v for k, v in diag.items() if k.startswith("host_")}
    lines.append("board counters")
    for k, v in board_c.items():
        lines.append(f"  {k:<22}{v}")
    lines.append("host counters")
    for k, v in host_c.items():
        lines.append(f"  {k:<22}{v}")
    relay = getattr(board.transport, "fault_relay", None)
    if relay is not None:
        lines.append(f"faults injected (seed {relay.seed}; to board / to host)")
        tb, th = relay.stats["board"], relay.stats["host"]
        for k in ("bytes", "dropped", "flipped", "delays", "frames_damaged"):
            lines.append(f"  {k:<22}{getattr(tb, k)} / {getattr(th, k)}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from .rpc import open_board

    port = port_arg(args)
    with open_board(port, timeout=args.timeout) as board:
        diag = board.diagnostics()
        if args.json:
            info = board.info
            assert info is not None   # open_board handshakes by default
            print(json.dumps({
                "port": port, "proto": list(info.proto), "fw_version": info.fw_version,
                "fw_build": info.fw_build, "board": info.board, "caps": info.caps,
                "addr_type": info.addr_type, "addr": info.addr_str, "boot_id": info.boot_id,
                "firmware_port": info.port, "diagnostics": diag,
            }, indent=2))
        else:
            print(_format_info(port, board, diag))
    return 0


# -- sim ----------------------------------------------------------------------------------

def _launcher() -> Any:
    try:
        from .sim import launcher
    except ImportError as exc:
        raise CliError(f"the simulator is not available ({exc})",
                       "install the sim extra: pip install 'blebridge[sim]'") from exc
    return launcher


def _sim_field(b: Any, name: str) -> Any:
    return b.get(name) if isinstance(b, dict) else getattr(b, name, None)


def cmd_sim_start(args: argparse.Namespace) -> int:
    launcher = _launcher()
    try:
        b = launcher.start_board(args.name, air=args.air, detached=True, capture=args.capture)
    except FileNotFoundError as exc:
        raise CliError(f"cannot start sim board {args.name}: {exc}",
                       "build the sim firmware first: make firmware (or set BLEBRIDGE_SIM_FIRMWARE)") from exc
    except (OSError, RuntimeError, ValueError) as exc:
        raise CliError(f"cannot start sim board {args.name}: {exc}",
                       f"`blebridge sim list` shows the running boards; set {DEBUG_ENV}=1 for details") from exc
    port = f"sim:{args.name}" + (f"?air={args.air}" if args.air else "")
    print(f"sim board {_sim_field(b, 'name')} running: pty {_sim_field(b, 'pty')}, pid {_sim_field(b, 'pid')}, "
          f"air {_sim_field(b, 'air')}")
    if args.capture:
        print(f"capturing its HCI traffic to {os.path.abspath(args.capture)} (btsnoop; "
              f"open it in Wireshark) until `blebridge sim stop {args.name}`")
    print(f"use it with: --port {port}   (or export {PORT_ENV}={port})")
    return 0


def cmd_sim_list(args: argparse.Namespace) -> int:
    boards = list(_launcher().list_boards(args.air))
    if not boards:
        print("no simulated boards running (start one: blebridge sim start NAME)")
        return 0
    rows: list[tuple[str, ...]] = [("NAME", "PID", "PTY", "AIR")]
    for b in boards:
        rows.append(tuple(str(_sim_field(b, k) or "") for k in ("name", "pid", "pty", "air")))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_sim_stop(args: argparse.Namespace) -> int:
    launcher = _launcher()
    if args.all:
        n = launcher.stop_all(args.air)
        print(f"stopped {n} simulated board{'' if n == 1 else 's'}" if isinstance(n, int) else
              "stopped all simulated boards")
        return 0
    if not args.name:
        raise CliError("name a board to stop, or give --all", "`blebridge sim list` shows the running boards")
    stopped = launcher.stop_board(args.name, args.air)
    if stopped is False:
        raise CliError(f"no simulated board named {args.name} is running",
                       "`blebridge sim list` shows the running boards")
    print(f"stopped sim board {args.name}")
    return 0


# -- bench --------------------------------------------------------------------------------

def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench
    return bench.main(args, port_arg(args))


# -- parser -------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blebridge",
        description="Script a BLE board running blebridge firmware (or a simulated one) from Python.")
    parser.add_argument("--version", action="version", version=f"blebridge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    h = "list serial ports and the boards blebridge recognises"
    p = sub.add_parser("list", help=h, description=h + " (by USB VID:PID).")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    h = "handshake with a board and show its firmware, capabilities and counters"
    p = sub.add_parser("info", help=h, description=h + " (board and host side).")
    p.add_argument("--port", "-p", help=PORT_HELP)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each answer (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    h = "start, list and stop simulated boards"
    p = sub.add_parser("sim", help=h, description=h + " (sim:NAME ports): the native firmware on a "
                       "simulated air shared by the user's programs (BLEBRIDGE_AIR: a private one).")
    simsub = p.add_subparsers(dest="sim_command", metavar="SIMCOMMAND")
    simsub.required = True
    h = "start a simulated board that stays up until `sim stop`"
    s = simsub.add_parser("start", help=h, description=h + "; prints the port to use.")
    s.add_argument("name", help="board name (its radio address is derived from it)")
    s.add_argument("--air", help="socket of the simulated air (default: the user's shared air)")
    s.add_argument("--capture", metavar="FILE",
                   help="write the board's HCI traffic (advertising, connections, ATT, SMP) to FILE "
                        "in btsnoop format, for Wireshark/tshark, until the board stops")
    s.set_defaults(func=cmd_sim_start)
    h = "list simulated boards started with `sim start`"
    s = simsub.add_parser("list", help=h, description=h + ".")
    s.add_argument("--air", help="socket of the simulated air (default: the user's shared air)")
    s.set_defaults(func=cmd_sim_list)
    h = "stop a simulated board started with `sim start` (or --all)"
    s = simsub.add_parser("stop", help=h, description=h + ".")
    s.add_argument("name", nargs="?", help="the board to stop")
    s.add_argument("--all", action="store_true", help="stop every simulated board")
    s.add_argument("--air", help="socket of the simulated air (default: the user's shared air)")
    s.set_defaults(func=cmd_sim_stop)

    from . import bench
    bench.add_parser(sub, PORT_HELP).set_defaults(func=cmd_bench)

    for modname in PLUGIN_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name == modname:
                continue              # plugin not installed: its command is not offered
            print(f"blebridge: warning: {modname} failed to load: {exc}", file=sys.stderr)
            continue
        except Exception as exc:      # a broken plugin must not take the other commands down
            print(f"blebridge: warning: {modname} failed to load: {exc}", file=sys.stderr)
            continue
        mod.add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_ERROR
    port = port_arg(args) if hasattr(args, "port") else None
    try:
        rc = func(args)
        return 0 if rc is None else int(rc)
    except KeyboardInterrupt:
        print("blebridge: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            traceback.print_exc()
        _print_error(exc, port or (getattr(exc, "port", None) if isinstance(exc, PortOpenError) else None))
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
