"""The port contract every board port honours (sim here; nrf_sd and nimble implement the same,
see firmware/ports/*/README.md), shown on simulated boards: the behaviours the review of the
board ports (issue 12) found missing on one of them."""
from __future__ import annotations

from blebridge.protocol import CONSTANTS

FLAG = CONSTANTS["flag"]
CFG = CONSTANTS["config"]
CONN_NONE = 0xFFFF
SERVICE = (0x180D).to_bytes(2, "little")
CHARACTERISTIC = (0x2A37).to_bytes(2, "little")
CCCD_UUID = (0x2902).to_bytes(2, "little")
ADV_DATA = b"\x02\x01\x06\x06\x09alice"
INTERVAL_US = 20_000  # explicit 20 ms intervals (SIMULATOR-NOTES.md)
#: Back-to-back notifications or Write Commands in a burst: many times the 4 a SoftDevice
#: queues per link and connection interval (nrf_sd's BB_NRF_HVN_QUEUE / BB_NRF_WRCMD_QUEUE).
BURST = 48
#: Seconds for a whole burst to arrive (generous: the machine may be loaded).
BURST_TIMEOUT_S = 30.0


def mac(board) -> tuple[int, bytes]:
    addr_type, addr = board.call("config_get", CFG["MAC"])
    return addr_type, addr


def boards(open_sim):
    alice, a_ev = open_sim("alice")
    bob, b_ev = open_sim("bob")
    for board in (alice, bob):
        assert board.call("ble_active", True) is True
    return alice, a_ev, bob, b_ev


def register(board) -> tuple[int, int]:
    """One characteristic that can be notified and written without response: (value, cccd)."""
    result = board.call("gatts_register_services", [
        [SERVICE, [[CHARACTERISTIC,
                    FLAG["READ"] | FLAG["WRITE"] | FLAG["WRITE_NO_RESPONSE"] | FLAG["NOTIFY"],
                    64, b"\x00", []]]],
    ])
    _svc, chrs = result[0]
    _decl, value, cccd, _dscs = chrs[0]
    return value, cccd


def connect(central, c_ev, peripheral, p_ev) -> tuple[int, int]:
    peripheral.call("gap_advertise_start", INTERVAL_US, ADV_DATA, b"", True, True, False, 0)
    addr_type, addr = mac(peripheral)
    central.call("gap_connect", addr_type, addr, 2000)
    return c_ev.wait("PERIPHERAL_CONNECT")[0], p_ev.wait("CENTRAL_CONNECT")[0]


def test_gap_connect_during_a_scan_ends_the_scan_with_scan_done_then_connects(open_sim):
    alice, a_ev, bob, b_ev = boards(open_sim)
    alice.call("gap_advertise_start", INTERVAL_US, ADV_DATA, b"", True, True, False, 0)
    addr_type, addr = mac(alice)
    bob.call("gap_scan_start", 0, 30_000, 30_000, False, True)  # no time limit
    b_ev.wait("SCAN_RESULT", lambda f: f[1] == addr)  # the scan runs
    bob.call("gap_connect", addr_type, addr, 2000)
    b_ev.wait("SCAN_DONE")
    conn = b_ev.wait("PERIPHERAL_CONNECT")[0]
    a_ev.wait("CENTRAL_CONNECT")
    assert conn != CONN_NONE


def test_notification_burst_is_taken_whole_and_arrives_in_order(open_sim):
    alice, a_ev, bob, b_ev = boards(open_sim)
    value, cccd = register(alice)
    c_conn, p_conn = connect(bob, b_ev, alice, a_ev)
    bob.call("gattc_write", c_conn, cccd, b"\x01\x00", 1)
    assert b_ev.wait("GATTC_WRITE_DONE") == (c_conn, cccd, 0)
    for i in range(BURST):
        # Every call is taken (returns, no EAGAIN): a full stack queue is the port's to wait out.
        alice.call("gatts_notify", p_conn, value, bytes([i]))
    got = [b_ev.wait("GATTC_NOTIFY", timeout=BURST_TIMEOUT_S)[2] for _ in range(BURST)]
    assert got == [bytes([i]) for i in range(BURST)]


def test_write_without_response_burst_is_taken_whole_and_arrives_in_order(open_sim):
    alice, a_ev, bob, b_ev = boards(open_sim)
    value, _cccd = register(alice)
    c_conn, p_conn = connect(bob, b_ev, alice, a_ev)
    for i in range(BURST):
        bob.call("gattc_write", c_conn, value, bytes([i]), 0)
    got = [a_ev.wait("GATTS_WRITE", timeout=BURST_TIMEOUT_S) for _ in range(BURST)]
    assert got == [(p_conn, value, bytes([i])) for i in range(BURST)]


def test_descriptor_discovery_reports_the_first_handle_of_its_range(open_sim):
    alice, a_ev, bob, b_ev = boards(open_sim)
    value, cccd = register(alice)
    c_conn, _p_conn = connect(bob, b_ev, alice, a_ev)
    # The range starts at the first descriptor handle, value + 1, where the CCCD is (NimBLE's
    # own call takes the value handle and starts after it: the nimble port converts).
    bob.call("gattc_discover_descriptors", c_conn, value + 1, value + 1)
    assert b_ev.wait("GATTC_DESCRIPTOR_RESULT") == (c_conn, cccd, CCCD_UUID)
    assert b_ev.wait("GATTC_DESCRIPTOR_DONE") == (c_conn, 0)
