"""`blebridge scan`: the advertisers a board hears, live on a terminal, as lines when piped."""
from __future__ import annotations

import io
import json
import os
import re
from unittest import mock

from blebridge import scan as scan_command

from cli_helpers import (ADV_COMPANY, ADV_MANUFACTURER, ADV_NAME, ADV_SERVICE, Command,
                         assert_one_line_and_hint, blebridge, board_name)


def _scan(*extra: str, tty: bool = False) -> Command:
    return Command("scan", "--port", f"sim:{board_name('scan')}", *extra, tty=tty)


def _heard(address: str, *fragments: bytes):
    return lambda out: any(address.encode() in line and all(f in line for f in fragments)
                           for line in out.splitlines())


def test_piped_scan_prints_a_line_with_address_name_services_and_manufacturer(advertiser):
    address = advertiser.info.addr_str
    scan = _scan()
    try:
        scan.wait_for(_heard(address, b"manufacturer=ffff:c0ffee"), "line with the scan response")
        scan.interrupt()
        status, out, err = scan.finish()
    finally:
        scan.kill()
    line = next(ln for ln in out.splitlines() if address in ln and "c0ffee" in ln)
    assert f'name="{ADV_NAME}"' in line and f"services={ADV_SERVICE:04x}" in line
    assert "\x1b" not in out


def test_json_is_one_object_per_line_with_the_decoded_fields(advertiser):
    address = advertiser.info.addr_str
    scan = _scan("--json")
    try:
        scan.wait_for(_heard(address, b"c0ffee"), "JSON object with the scan response")
        scan.interrupt()
        status, out, err = scan.finish()
    finally:
        scan.kill()
    objects = [json.loads(line) for line in out.splitlines()]
    mine = [o for o in objects if o["address"] == address and o["scan_response"]]
    assert mine[-1]["name"] == ADV_NAME and mine[-1]["services"] == [f"{ADV_SERVICE:04x}"]
    assert mine[-1]["manufacturer"] == [{"company": ADV_COMPANY, "data": ADV_MANUFACTURER.hex()}]
    assert mine[-1]["connectable"] is True


def test_ctrl_c_ends_the_scan_with_status_0_and_no_traceback(advertiser):
    scan = _scan()
    try:
        scan.wait_for(_heard(advertiser.info.addr_str), "line of the advertiser")
        scan.interrupt()
        status, out, err = scan.finish()
    finally:
        scan.kill()
    assert status == 0, err
    assert "Traceback" not in err and "interrupted" not in err


def test_terminal_shows_a_table_redrawn_in_place(advertiser):
    address = advertiser.info.addr_str.encode()
    scan = _scan(tty=True)
    try:
        # Two drawings with the advertiser's row, the second after the cursor went back up.
        scan.wait_for(lambda out: out.count(address) >= 2 and re.search(rb"\x1b\[\d+F", out) is not None,
                      "redrawn table")
        scan.interrupt()
        status, out, err = scan.finish()
    finally:
        scan.kill()
    assert status == 0, err
    assert "ADDRESS" in out and "RSSI" in out and "MANUFACTURER" in out
    assert ADV_NAME in out and "ffff:c0ffee" in out


def test_duration_ends_the_scan_by_itself():
    r = blebridge("scan", "--port", f"sim:{board_name('scan')}", "--duration", "0.5", "--passive")
    assert r.returncode == 0, r.stderr
    assert "passive" in r.stderr


def test_negative_duration_is_refused():
    r = blebridge("scan", "--port", f"sim:{board_name('scan')}", "--duration", "-1")
    assert_one_line_and_hint(r, "--duration")


def test_scan_on_a_port_that_cannot_be_opened_is_one_line_and_a_hint():
    r = blebridge("scan", "--port", "/dev/ttyNOSUCHPORT")
    assert_one_line_and_hint(r, "cannot open /dev/ttyNOSUCHPORT")


def test_a_reader_that_goes_away_ends_the_scan_quietly(advertiser):
    scan = _scan("--json")
    try:
        scan.wait_for(_heard(advertiser.info.addr_str), "first JSON line")
        scan.proc.stdout.close()             # as `| head -1` does once it has its line
        status = scan.proc.wait(60)
        err = scan.proc.stderr.read().decode()
    finally:
        scan.kill()
    assert status == 0, err
    assert "Traceback" not in err and "error" not in err


def test_a_table_taller_than_the_terminal_is_cut_to_fit():
    table = scan_command.ScanTable()
    for i in range(40):
        table.report(1, bytes([i, 0, 0, 0, 0, 0xC0]), 0, -40, b"")
    out = io.StringIO()
    with mock.patch.object(scan_command.shutil, "get_terminal_size", return_value=os.terminal_size((80, 10))):
        scan_command.TerminalView(out).draw(scan_command.table_lines(table, "header"))
    drawn = out.getvalue().split("\n")[:-1]
    # 9 lines: the cursor must be able to go back up over all of them on a 10-line screen.
    assert len(drawn) == 9 and drawn[-1].startswith("... 34 more")
