"""``blebridge scan``: the advertisers a board hears, as a live table.

    blebridge scan [--port PORT] [--duration S] [--passive] [--json]

On a terminal the table (address, RSSI, name, services, manufacturer data) is redrawn in place
with ANSI escapes; piped, each advertiser is one plain ``key=value`` line when first heard and
again when its data changes (not for RSSI alone); ``--json`` prints the same as one JSON object
per line. The scan runs until ``--duration`` seconds pass, or until Ctrl-C, which ends it cleanly
(status 0). Scans are active by default (scan requests: names often come in scan responses).

The advertising payloads are decoded by the API-neutral layer (blebridge.ble.advertising); a
report's scan response and its advertisement are kept apart and read together, as a phone's
scanner shows them. The radio is left as it was found (turned off again if it was off).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional, TextIO

from . import protocol as P
from .ble import address as ble_address
from .ble import advertising
from .errors import BlebridgeError

#: Scan interval and window (µs): equal, so the board listens all the time (as phones'
#: foreground scans do); both within HCI's 2.5 ms .. 10.24 s.
SCAN_INTERVAL_US = 100_000
SCAN_WINDOW_US = 100_000
#: Seconds between redraws of the table on a terminal (it changes with every report).
REDRAW_PERIOD_S = 0.25
#: Bytes of manufacturer data the table shows per company (the rest is "…"; --json has all).
TABLE_MANUFACTURER_BYTES = 8

_ADV = P.CONSTANTS["adv_type"]
_CONNECTABLE_TYPES = {_ADV["ADV_IND"], _ADV["ADV_DIRECT_IND"]}
_SCAN_RSP = _ADV["SCAN_RSP"]
_EXT_ADV = _ADV["EXT_ADV"]

# ANSI escapes: cursor up N lines to column 1, erase to the end of the line / of the screen.
_UP = "\x1b[{}F"
_ERASE_LINE = "\x1b[K"
_ERASE_BELOW = "\x1b[J"


@dataclass
class Advertiser:
    """What was heard from one address: the latest advertisement and scan response."""

    addr_type: int
    addr: bytes                          #: as the wire carries it (least significant byte first)
    rssi: int = 0
    reports: int = 0
    adv_data: bytes = b""
    scan_response: bytes = b""
    connectable: Optional[bool] = None   #: None until an advertisement (not a scan response) came
    first_seen: float = field(default_factory=time.monotonic)

    @property
    def address(self) -> str:
        return ble_address.format_wire(self.addr)

    @property
    def address_type(self) -> str:
        return ble_address.TYPE_NAMES.get(self.addr_type, str(self.addr_type))

    def _both(self) -> bytes:
        # Advertisement first: its fields win where both carry one (advertising.find takes the first).
        return self.adv_data + self.scan_response

    @property
    def name(self) -> Optional[str]:
        return advertising.name(self._both())

    @property
    def services(self) -> list[str]:
        return list(dict.fromkeys(str(u) for u in advertising.service_uuids(self._both())))

    @property
    def manufacturer(self) -> dict[int, bytes]:
        out = advertising.manufacturer_data(self.scan_response)
        out.update(advertising.manufacturer_data(self.adv_data))
        return out

    def data_key(self) -> tuple:
        """What a piped listing prints again when it changes (everything but RSSI and counts)."""
        return (self.adv_data, self.scan_response, self.connectable)

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address, "address_type": self.address_type, "rssi": self.rssi,
            "name": self.name, "services": self.services,
            "manufacturer": [{"company": c, "data": d.hex()} for c, d in sorted(self.manufacturer.items())],
            "connectable": self.connectable, "adv_data": self.adv_data.hex(),
            "scan_response": self.scan_response.hex(), "reports": self.reports,
        }

    def as_line(self) -> str:
        manufacturer = ",".join(f"{c:04x}:{d.hex()}" for c, d in sorted(self.manufacturer.items()))
        return (f"address={self.address} type={self.address_type} rssi={self.rssi} "
                f"name={json.dumps(self.name)} services={','.join(self.services) or '-'} "
                f"manufacturer={manufacturer or '-'} connectable="
                f"{'-' if self.connectable is None else 'yes' if self.connectable else 'no'}")


class ScanTable:
    """Advertisers by address, in the order first heard; fed from the board's event thread."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.advertisers: dict[tuple[int, bytes], Advertiser] = {}
        self.changed: list[Advertiser] = []   #: new or changed data since last taken
        self.version = 0                      #: bumped on every report
        self.done = False                     #: the board ended the scan (SCAN_DONE)
        self.lost: Optional[BaseException] = None

    def report(self, addr_type: int, addr: bytes, adv_type: int, rssi: int, data: bytes) -> None:
        with self.cond:
            key = (addr_type, bytes(addr))
            adv = self.advertisers.get(key)
            if adv is None:
                adv = self.advertisers[key] = Advertiser(addr_type, bytes(addr))
                before: Optional[tuple] = None
            else:
                before = adv.data_key()
            adv.rssi, adv.reports = rssi, adv.reports + 1
            if adv_type == _SCAN_RSP:
                adv.scan_response = bytes(data)
            else:
                adv.adv_data = bytes(data)
                # An extended report's kind does not say (the protocol's EXT_ADV): unknown.
                adv.connectable = None if adv_type == _EXT_ADV else adv_type in _CONNECTABLE_TYPES
            if adv.data_key() != before and adv not in self.changed:
                self.changed.append(adv)
            self.version += 1
            self.cond.notify_all()

    def on_event(self, ev: Any) -> None:
        if ev.name == "SCAN_RESULT":
            addr_type, addr, adv_type, rssi, data = ev.fields
            self.report(addr_type, addr, adv_type, rssi, data)
        elif ev.name == "SCAN_DONE":
            with self.cond:
                self.done = True
                self.cond.notify_all()

    def on_lost(self, exc: BaseException) -> None:
        with self.cond:
            self.lost = exc
            self.cond.notify_all()

    def take_changed(self) -> list[Advertiser]:
        with self.cond:
            out, self.changed = self.changed, []
            return out


def _cell_services(adv: Advertiser) -> str:
    return ",".join(adv.services)


def _cell_manufacturer(adv: Advertiser) -> str:
    parts = []
    for company, data in sorted(adv.manufacturer.items()):
        shown = data[:TABLE_MANUFACTURER_BYTES].hex()
        parts.append(f"{company:04x}:{shown}{'...' if len(data) > TABLE_MANUFACTURER_BYTES else ''}")
    return " ".join(parts)


def table_lines(table: ScanTable, header: str) -> list[str]:
    """The header line and the table's rows, columns aligned."""
    with table.cond:
        advs = list(table.advertisers.values())
    rows = [("ADDRESS", "TYPE", "RSSI", "NAME", "SERVICES", "MANUFACTURER")]
    for a in advs:
        rows.append((a.address, a.address_type, str(a.rssi), a.name or "", _cell_services(a),
                     _cell_manufacturer(a)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [header] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


class TerminalView:
    """The table redrawn in place: cursor back up over the last drawing, lines rewritten."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.drawn = 0

    def draw(self, lines: list[str]) -> None:
        size = shutil.get_terminal_size()
        width = max(size.columns - 1, 20)
        # At most the screen's height less one line: the cursor cannot go back up past the top.
        fit = max(size.lines - 1, 3)
        if len(lines) > fit:
            lines = lines[:fit - 1] + [f"... {len(lines) - fit + 1} more (make the window taller, "
                                       "or pipe the output for every advertiser)"]
        text = _UP.format(self.drawn) if self.drawn else ""
        # Lines cut to the terminal's width: a wrapped line would take two rows and the next
        # redraw would go up too few.
        text += "".join(line[:width] + _ERASE_LINE + "\n" for line in lines) + _ERASE_BELOW
        self.out.write(text)
        self.out.flush()
        self.drawn = len(lines)


def _reader_gone(out: TextIO) -> bool:
    """True when ``out`` is a pipe whose reading end was closed (`| head -1` got its line): a
    scan that has nothing new to write would otherwise not notice until its next line."""
    try:
        fd = out.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _fd, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def scan(board: Any, out: TextIO, *, duration: float, active: bool, as_json: bool, tty: bool,
         port: str) -> int:
    """Scan on an open board and show what is heard until the scan ends; returns the status."""
    from . import calls

    table = ScanTable()
    board.add_event_listener(table.on_event)
    board.add_lost_listener(table.on_lost)
    was_active = calls.ble_active(board)
    if not was_active:
        calls.ble_active(board, on=True)
    mode = "active" if active else "passive"
    until = f"{duration:g} s" if duration else "Ctrl-C"
    view = TerminalView(out) if tty and not as_json else None
    started = time.monotonic()
    scanning = True        # from before the call: a Ctrl-C during it still stops the scan
    try:
        calls.gap_scan_start(board, duration_ms=int(duration * 1000), interval_us=SCAN_INTERVAL_US,
                             window_us=SCAN_WINDOW_US, active=active, filter_duplicates=False)
        if not tty:
            print(f"scanning on {port} ({mode}) until {until}", file=sys.stderr, flush=True)
        seen = -1
        while True:
            with table.cond:
                table.cond.wait_for(lambda: table.version != seen or table.done or table.lost is not None,
                                    timeout=REDRAW_PERIOD_S)
                seen, done, lost = table.version, table.done, table.lost
            if lost is not None:
                scanning = False
                raise lost
            if view is None and _reader_gone(out):
                raise BrokenPipeError("the reader of the scan's output went away")
            if view is not None:
                n = len(table.advertisers)
                view.draw(table_lines(table, f"scanning on {port} ({mode}), {time.monotonic() - started:.0f} s, "
                                             f"{n} advertiser{'' if n == 1 else 's'} - until {until}"))
            else:
                for adv in table.take_changed():
                    out.write((json.dumps(adv.as_json()) if as_json else adv.as_line()) + "\n")
                out.flush()
            if done:
                scanning = False
                break
            if view is not None:
                time.sleep(REDRAW_PERIOD_S)     # at most one redraw per period
    except KeyboardInterrupt:
        pass                                   # Ctrl-C is how a scan without --duration ends
    except BrokenPipeError:
        # The reader went away (`| head -1`): the scan ends quietly, as a pipeline expects;
        # stdout goes to /dev/null so the exit's own flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 0
    finally:
        board.remove_event_listener(table.on_event)
        board.remove_lost_listener(table.on_lost)
        if table.lost is None:
            # Leave the radio as found; a failure here must not hide why the scan ended.
            with contextlib.suppress(BlebridgeError):
                if scanning:
                    calls.gap_scan_stop(board)
                if not was_active:
                    calls.ble_active(board, on=False)
    if view is not None:
        n = len(table.advertisers)
        view.draw(table_lines(table, f"scanned on {port} ({mode}) for {time.monotonic() - started:.0f} s: "
                                     f"{n} advertiser{'' if n == 1 else 's'}"))
    else:
        for adv in table.take_changed():
            out.write((json.dumps(adv.as_json()) if as_json else adv.as_line()) + "\n")
        out.flush()
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from .cli import port_arg
    from .rpc import open_board

    if args.duration is not None and args.duration < 0:
        from .cli import CliError
        raise CliError(f"--duration is seconds (0 or more), not {args.duration:g}", "0 scans until Ctrl-C")
    port = port_arg(args)
    with open_board(port) as board:
        return scan(board, sys.stdout, duration=args.duration or 0.0, active=not args.passive,
                    as_json=args.json, tty=sys.stdout.isatty(), port=port)


_HELP = "live table of the advertisers a board hears (address, RSSI, name, services, manufacturer)"
_DESCRIPTION = ("Scan for advertisers with a board: a table of address, RSSI, name, services and "
                "manufacturer data, redrawn in place on a terminal; one key=value line per advertiser "
                "(when first heard and when its data changes) when piped; --json: the same as JSON lines")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``scan`` to the blebridge CLI (cli.py calls this)."""
    from .cli import PORT_HELP
    p = subparsers.add_parser("scan", help=_HELP, description=_DESCRIPTION + ". Ctrl-C ends it.")
    p.add_argument("--port", "-p", help=PORT_HELP)
    p.add_argument("--duration", "-t", type=float, default=None, metavar="S",
                   help="seconds to scan (default: until Ctrl-C)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--active", action="store_true",
                      help="send scan requests, to get scan responses (the default)")
    mode.add_argument("--passive", action="store_true", help="only listen: no scan requests")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line for each advertiser, when first heard and when its data changes")
    p.set_defaults(func=cmd_scan)
    return p
