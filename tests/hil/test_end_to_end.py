"""End-to-end tests on the rig's boards in the HIL run (`make hil`), on simulated boards otherwise.

Every test here speaks only the RPC contract (docs/design.md), so the same test runs against
sim, nrf_sd and nimble boards.
"""
import threading

import pytest

from blebridge import protocol as P

ADV_NAME = b"bb-hil"
ADV_DATA = bytes([2, 0x01, 0x06, len(ADV_NAME) + 1, 0x09]) + ADV_NAME
SCAN_TIMEOUT_S = 10.0


def test_boards_fixture_opens_simulated_boards_without_a_rig(hil_rig, boards):
    if hil_rig.configured:
        pytest.skip("a rig is configured: this checks the simulated default")
    (board,) = boards
    assert board.info.port == "sim"


@pytest.mark.hil
def test_rig_board_speaks_this_hosts_protocol(boards):
    (board,) = boards
    assert board.info.proto[0] == P.PROTO_MAJOR
    # "sim" too: a rig of sim: ports rehearses the HIL run without hardware.
    assert board.info.port in ("nrf_sd", "nimble", "sim")
    assert board.info.board


@pytest.mark.hil
def test_rig_board_echoes_a_max_size_payload(boards):
    (board,) = boards
    data = bytes(range(256)) * 2
    assert board.call("echo", data) == data


@pytest.mark.hil
@pytest.mark.boards(2)
def test_second_board_sees_first_boards_advertising(boards):
    adv, scanner = boards
    seen = threading.Event()

    def on_event(ev):
        if ev.name == "SCAN_RESULT" and ADV_NAME in ev.fields[4]:
            seen.set()

    adv.call("ble_active", True)
    scanner.call("ble_active", True)
    adv.call("gap_advertise_start", 100_000, ADV_DATA, b"", True, False, False, 0)
    scanner.add_event_listener(on_event)
    try:
        scanner.call("gap_scan_start", 0, 30_000, 30_000, False, False)
        assert seen.wait(SCAN_TIMEOUT_S), f"no advertisement containing {ADV_NAME!r} within {SCAN_TIMEOUT_S} s"
    finally:
        scanner.call("gap_scan_stop")
        scanner.remove_event_listener(on_event)
        adv.call("gap_advertise_stop")
