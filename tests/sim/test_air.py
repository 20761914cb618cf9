"""The air on its own: ops and events as a board's port sees them (no firmware; AirClient)."""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from air_client import AirClient

from blebridge.protocol import CONSTANTS
from blebridge.sim.air import address_for_name
from blebridge.sim.board import EVENT_WINDOW_BYTES

FLAG = CONSTANTS["flag"]
CONN_NONE = 0xFFFF
IO = CONSTANTS["io"]
#: bb_question_kind_t of bb_port.h (the air does not look at it; sent for the record).
QUESTION_GET_SECRET, QUESTION_SET_SECRET = 3, 4
INTERVAL_US = 20_000  # explicit 20 ms intervals (SIMULATOR-NOTES.md)
SVC = bytes(range(16))
CHR = bytes(range(16, 32))
#: Key size of every encrypted link on the air (Bumble's SMP always uses 16-byte keys), bytes.
LE_KEY_SIZE = 16
#: Peer writes sent at once in the window test: their events (about 40 bytes each) need
#: several windows.
FLOOD_WRITES = 600
#: Just-works pairing on the air takes milliseconds; this only bounds a broken one (s).
PAIRING_TIMEOUT_S = 5.0
#: Connection intervals of the terminate timing tests, µs: far above the air's own latency
#: (about 1 ms per hop), so a terminate delivered at once cannot pass for a delayed one.
SLOW_INTERVAL_US = 100_000
SLOWER_INTERVAL_US = 200_000
#: Supervision timeout for those connections, ms (Core Vol 6 Part B 4.5.2: above twice the
#: interval).
SLOW_SUPERVISION_MS = 2_000
#: Bound on waiting for an event that a working air sends within milliseconds, s.
DEFAULT_EVENT_TIMEOUT_S = 5.0


@pytest.fixture
def two_ports(air) -> Iterator[tuple[AirClient, AirClient]]:
    """Two board ports on the air with their radios on: (peripheral, central)."""
    ports = [AirClient(air.socket_path, name) for name in ("perry", "cecil")]
    try:
        for port in ports:
            assert port.call("activate", True) is True
        yield ports[0], ports[1]
    finally:
        for port in ports:
            port.close()


def configure_just_works(port: AirClient) -> None:
    # addr_mode, gap_name, appearance, mtu, bond, mitm, io, le_secure, tx_power
    port.call("config", 1, port.name, 0, 517, False, False, IO["NO_INPUT_OUTPUT"], True, 0)


def register_chr(port: AirClient, max_len: int, flags: int = FLAG["READ"] | FLAG["WRITE"]) -> int:
    """One writable characteristic registered with ``max_len``; returns its value handle."""
    result = port.call("gatts_register", [[SVC, [[CHR, flags, max_len, b"", []]]]])
    return result[0][1][0][1]


def gatts_writes(events: list[tuple[str, tuple[Any, ...]]]) -> list[bytes]:
    return [fields[2] for name, fields in events if name == "GATTS_WRITE"]


def connect(peripheral: AirClient, central: AirClient) -> tuple[int, int]:
    """(conn on the peripheral, conn on the central)."""
    peripheral.call("adv_start", INTERVAL_US, b"\x02\x01\x06", b"", True, True, False, 0)
    central.call("connect", peripheral.addr_type, peripheral.addr, 2000)
    c_conn = central.wait("PERIPHERAL_CONNECT")[0]
    p_conn = peripheral.wait("CENTRAL_CONNECT")[0]
    return p_conn, c_conn


def connect_at(peripheral: AirClient, central: AirClient, interval_us: int) -> tuple[int, int]:
    """Like connect(), with the connection interval fixed at ``interval_us``."""
    peripheral.call("adv_start", INTERVAL_US, b"\x02\x01\x06", b"", True, True, False, 0)
    central.call("connect", peripheral.addr_type, peripheral.addr, 2000, interval_us, interval_us,
                 0, SLOW_SUPERVISION_MS)
    c_conn = central.wait("PERIPHERAL_CONNECT")[0]
    p_conn = peripheral.wait("CENTRAL_CONNECT")[0]
    return p_conn, c_conn


def answer_secrets(events: list[tuple[str, tuple[Any, ...]]], port: AirClient) -> None:
    """Answer bond storage questions as a host without bonds does."""
    for name, fields in events:
        if name == "GET_SECRET":
            port.answer(QUESTION_GET_SECRET, fields[0], found=False)
        elif name == "SET_SECRET":
            port.answer(QUESTION_SET_SECRET, fields[0], found=True)


def test_peer_write_longer_than_registered_max_len_reaches_the_board(two_ports):
    peripheral, central = two_ports
    handle = register_chr(peripheral, 20)
    p_conn, c_conn = connect(peripheral, central)
    central.call("gattc_mtu", c_conn)
    central.wait("MTU_EXCHANGED")
    value = bytes(range(200))
    central.call("gattc_write", c_conn, handle, value, True)
    # The core truncates to its (possibly grown) buffer; the air must not refuse the write.
    assert central.wait("GATTC_WRITE_DONE") == (c_conn, handle, 0)
    assert peripheral.wait("GATTS_WRITE") == (p_conn, handle, value, 0)


def test_peer_write_longer_than_the_att_mtu_is_cut_to_mtu_minus_3(two_ports):
    peripheral, central = two_ports
    handle = register_chr(peripheral, 512)
    p_conn, c_conn = connect(peripheral, central)  # no MTU exchange: ATT MTU 23
    central.call("gattc_write", c_conn, handle, bytes(range(40)), True)
    assert central.wait("GATTC_WRITE_DONE") == (c_conn, handle, 0)
    assert peripheral.wait("GATTS_WRITE") == (p_conn, handle, bytes(range(20)), 0)


def test_mtu_exchange_is_reported_once_on_each_side(two_ports):
    peripheral, central = two_ports
    p_conn, c_conn = connect(peripheral, central)
    central.call("gattc_mtu", c_conn)
    central.wait("MTU_EXCHANGED")
    central_mtu = [f for n, f in central.drain() if n == "MTU_EXCHANGED"]
    peripheral_mtu = [f for n, f in peripheral.drain() if n == "MTU_EXCHANGED"]
    assert central_mtu == []  # the one taken by wait() above was the only one
    assert peripheral_mtu == [(p_conn, 517)]


def test_encryption_update_after_pairing_carries_the_key_size(two_ports):
    peripheral, central = two_ports
    for port in (peripheral, central):
        configure_just_works(port)
    p_conn, c_conn = connect(peripheral, central)
    central.call("pair", c_conn)
    updates: dict[str, tuple[Any, ...]] = {}
    deadline = time.monotonic() + PAIRING_TIMEOUT_S
    while len(updates) < 2 and time.monotonic() < deadline:
        for port in (peripheral, central):
            events = port.drain(settle=0.1)
            answer_secrets(events, port)
            for name, fields in events:
                if name == "ENCRYPTION_UPDATE":
                    updates[port.name] = fields
    # conn, encrypted, authenticated, bonded, key_size
    assert updates[central.name] == (c_conn, True, False, False, LE_KEY_SIZE)
    assert updates[peripheral.name] == (p_conn, True, False, False, LE_KEY_SIZE)


def test_connect_cancelled_before_it_reaches_the_controller_reports_conn_none(two_ports):
    _peripheral, central = two_ports
    absent = bytes(address_for_name("nobody"))
    # Both ops in one write: the cancel is handled before the connect task has run at all.
    central.pipeline(("connect", 1, absent, 0), ("connect_cancel",))
    fields = central.wait("PERIPHERAL_DISCONNECT")
    assert fields[:3] == (CONN_NONE, 1, absent)


def test_events_beyond_the_window_wait_for_the_port_to_acknowledge(air):
    # A port that does not acknowledge (its queue is full) gets at most the window; every
    # event arrives, in order, as it acknowledges.
    peripheral = AirClient(air.socket_path, "perry", auto_ack=False)
    central = AirClient(air.socket_path, "cecil")
    try:
        for port in (peripheral, central):
            assert port.call("activate", True) is True
        handle = register_chr(peripheral, 512, FLAG["WRITE_NO_RESPONSE"])
        _p_conn, c_conn = connect(peripheral, central)
        values = [i.to_bytes(2, "little") * 10 for i in range(FLOOD_WRITES)]
        for value in values:
            central.call("gattc_write", c_conn, handle, value, False)
        received = peripheral.drain(settle=0.3)
        assert peripheral.received_event_bytes <= EVENT_WINDOW_BYTES
        assert len(gatts_writes(received)) < FLOOD_WRITES
        acked = 0
        deadline = time.monotonic() + 5
        while len(gatts_writes(received)) < FLOOD_WRITES and time.monotonic() < deadline:
            peripheral.ack(peripheral.received_event_bytes - acked)
            acked = peripheral.received_event_bytes
            received += peripheral.drain(settle=0.05)
        assert gatts_writes(received) == values
    finally:
        peripheral.close()
        central.close()


def test_peer_hears_of_a_disconnect_one_connection_interval_later(two_ports):
    peripheral, central = two_ports
    _p_conn, c_conn = connect_at(peripheral, central, SLOW_INTERVAL_US)
    start = time.monotonic()
    central.call("disconnect", c_conn)
    central.wait("PERIPHERAL_DISCONNECT")
    peripheral.wait("CENTRAL_DISCONNECT")
    assert time.monotonic() - start >= SLOW_INTERVAL_US / 1e6


@pytest.mark.parametrize("ender", ["central", "peripheral"])
def test_disconnect_delay_follows_a_connection_update(two_ports, ender):
    # The central's controller learns the new interval from its update command, the
    # peripheral's from the update PDU: whichever side ends the link, the other waits for it.
    peripheral, central = two_ports
    p_conn, c_conn = connect_at(peripheral, central, SLOW_INTERVAL_US)
    central.call("conn_update", c_conn, SLOWER_INTERVAL_US, SLOWER_INTERVAL_US, 0,
                 SLOW_SUPERVISION_MS)
    central.wait("CONNECTION_UPDATE")
    peripheral.wait("CONNECTION_UPDATE")
    start = time.monotonic()
    if ender == "central":
        central.call("disconnect", c_conn)
        peripheral.wait("CENTRAL_DISCONNECT")
    else:
        peripheral.call("disconnect", p_conn)
        central.wait("PERIPHERAL_DISCONNECT")
    assert time.monotonic() - start >= SLOWER_INTERVAL_US / 1e6


def test_reconnect_before_the_terminate_lands_reports_the_old_link_down_first(two_ports):
    peripheral, central = two_ports
    _p_conn, c_conn = connect_at(peripheral, central, SLOW_INTERVAL_US)
    # Still connected, the peripheral advertises again; the central leaves and comes straight
    # back, well inside one interval.
    peripheral.call("adv_start", INTERVAL_US, b"\x02\x01\x06", b"", True, True, False, 0)
    central.call("disconnect", c_conn)
    central.wait("PERIPHERAL_DISCONNECT")
    central.call("connect", peripheral.addr_type, peripheral.addr, 2000)
    central.wait("PERIPHERAL_CONNECT")
    links: list[str] = []
    deadline = time.monotonic() + DEFAULT_EVENT_TIMEOUT_S
    while "CENTRAL_CONNECT" not in links and time.monotonic() < deadline:
        links += [name for name, _fields in peripheral.drain(settle=0.05)
                  if name in ("CENTRAL_CONNECT", "CENTRAL_DISCONNECT")]
    assert links == ["CENTRAL_DISCONNECT", "CENTRAL_CONNECT"]


def subscribe(peripheral: AirClient, central: AirClient) -> tuple[int, int, int]:
    """A notifiable characteristic, connected, the central subscribed: (value handle on the
    peripheral, p_conn, c_conn)."""
    result = peripheral.call("gatts_register",
                             [[SVC, [[CHR, FLAG["READ"] | FLAG["NOTIFY"], 20, b"", []]]]])
    _decl, handle, cccd, _dscs = result[0][1][0]
    p_conn, c_conn = connect(peripheral, central)
    central.call("gattc_write", c_conn, cccd, b"\x01\x00", True)
    central.wait("GATTC_WRITE_DONE")
    return handle, p_conn, c_conn


def test_posted_notifications_reach_the_peer_in_order_with_no_response(two_ports):
    peripheral, central = two_ports
    handle, p_conn, c_conn = subscribe(peripheral, central)
    values = [bytes([i]) * 4 for i in range(5)]
    for value in values:
        peripheral.post("gatts_notify", p_conn, handle, value)
    got = [central.wait("GATTC_NOTIFY")[2] for _ in values]
    assert got == values
    # A request after the posts is answered with its own id: no response came for any post.
    assert peripheral.call("addr_get") == [peripheral.addr_type, peripheral.addr]
    assert peripheral.responses == {}


def test_failed_post_is_dropped_and_the_link_goes_on(two_ports):
    peripheral, central = two_ports
    handle, p_conn, c_conn = subscribe(peripheral, central)
    peripheral.post("gatts_notify", p_conn + 7, handle, b"lost")   # no such connection
    peripheral.post("no_such_op", 1, 2)
    peripheral.post("gatts_notify", p_conn, handle, b"kept")
    assert central.wait("GATTC_NOTIFY")[2] == b"kept"
    assert peripheral.call("addr_get") == [peripheral.addr_type, peripheral.addr]
    assert peripheral.responses == {}


def test_port_knows_the_airs_event_window() -> None:
    # bb_port_sim.c checks at compile time that its acks leave the window room; it can only if
    # its copy of the window is the air's.
    config = (Path(__file__).resolve().parents[2] / "firmware" / "core" / "bb_config.h").read_text()
    match = re.search(r"#define BB_SIM_AIR_WINDOW_BYTES (\d+)", config)
    assert match is not None
    assert int(match.group(1)) == EVENT_WINDOW_BYTES
