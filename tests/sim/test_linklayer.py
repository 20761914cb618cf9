"""The air's link-layer timing model (blebridge.sim.linklayer and the controller's procedures).

Asserts on the simulated timeline (event indices, packet traces, the link's counters) or on
lower bounds of time (a timer never fires early), never on how fast the machine is.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from air_client import AirClient
from bumble import hci
from bumble.device import ConnectionParametersPreferences, Device

from blebridge.sim import linklayer
from blebridge.sim.controller import AirAdvPdu
from blebridge.sim.linklayer import CENTRAL, PERIPHERAL, PHY_1M, PHY_2M, PHY_CODED

#: Bound on any step that a working air completes within a few connection intervals, s.
STEP_TIMEOUT_S = 20.0
#: A long interval (ms): a PDU sent between two events visibly waits for the next one.
LONG_INTERVAL_MS = 400.0
#: Supervision timeout of the lost-peer test (ms) and the interval its link uses (us).
LOST_PEER_TIMEOUT_MS = 1500
LOST_PEER_INTERVAL_US = 30_000
#: A notification payload that fits one 27-octet LL packet (ATT header 3 + L2CAP header 4).
SMALL_VALUE = bytes(20)


async def _connect(air_obj, interval_ms: float, timeout_ms: int = 4000) -> tuple[Device, Device, Any, Any]:
    """Two Bumble peers on the air, connected at ``interval_ms``: (peripheral, central, p_conn,
    c_conn)."""
    peripheral = await air_obj.add_peer("lp")
    central = await air_obj.add_peer("lc")
    connected: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    peripheral.once(peripheral.EVENT_CONNECTION, connected.set_result)
    await peripheral.start_advertising(advertising_interval_min=20, advertising_interval_max=20)
    prefs = ConnectionParametersPreferences(connection_interval_min=interval_ms,
                                            connection_interval_max=interval_ms,
                                            supervision_timeout=timeout_ms)
    c_conn = await central.connect(peripheral.random_address,
                                   connection_parameters_preferences={hci.HCI_LE_1M_PHY: prefs})
    p_conn = await connected
    return peripheral, central, p_conn, c_conn


def _link_connection(air_obj):
    (connection,) = air_obj.link.connections_of(next(iter(air_obj.link.controllers)))
    return connection


def _controller(air_obj, name: str):
    return next(c for c in air_obj.link.controllers if c.name == f"peer:{name}")


async def _wait_event(emitter, name: str) -> Any:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    emitter.once(name, lambda *args: future.done() or future.set_result(args))
    return await asyncio.wait_for(future, STEP_TIMEOUT_S)


def test_packet_air_time_follows_the_spec_for_each_phy():
    # LE 1M: preamble 1 + access address 4 + header 2 + payload + CRC 3 octets, 8 us each.
    assert linklayer.packet_air_time_us(251, PHY_1M) == (1 + 4 + 2 + 251 + 3) * 8
    assert linklayer.packet_air_time_us(0, PHY_1M) == 80
    # LE 2M: a 2-octet preamble, 4 us per octet.
    assert linklayer.packet_air_time_us(251, PHY_2M) == (2 + 4 + 2 + 251 + 3) * 4
    # Encrypted: a 4-octet MIC after a non-empty payload only.
    assert linklayer.packet_air_time_us(27, PHY_1M, encrypted=True) \
        == linklayer.packet_air_time_us(31, PHY_1M)
    assert linklayer.packet_air_time_us(0, PHY_1M, encrypted=True) == 80
    # LE Coded: FEC block 1 (376 us), then header + CRC (+ payload) and TERM2 at S bits per bit.
    assert linklayer.packet_air_time_us(0, PHY_CODED, linklayer.CODED_S8) == 376 + (5 * 8 + 3) * 8
    assert linklayer.packet_air_time_us(0, PHY_CODED, linklayer.CODED_S2) == 376 + (5 * 8 + 3) * 2


def test_a_notification_is_delivered_in_a_connection_event_not_before(air):
    async def scenario() -> tuple[float, float, float, float]:
        peripheral, _central, p_conn, _c = await _connect(air.air, LONG_INTERVAL_MS)
        link = _link_connection(air.air)
        receiver = _controller(air.air, "lc")
        received: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        original = receiver.on_link_acl_data

        def spy(*args: Any) -> None:
            if not received.done():
                received.set_result(asyncio.get_running_loop().time())
            original(*args)

        await asyncio.sleep(LONG_INTERVAL_MS / 1000 / 2)   # between two events
        receiver.on_link_acl_data = spy
        sent_at = asyncio.get_running_loop().time()
        await peripheral.notify_subscriber(p_conn, peripheral.gatt_server.attributes[-1],
                                           SMALL_VALUE, force=True)
        got_at = await asyncio.wait_for(received, STEP_TIMEOUT_S)
        return sent_at, got_at, link.anchor, link.interval_s

    sent_at, got_at, anchor, interval = air.run(scenario(), timeout=STEP_TIMEOUT_S * 2)
    # The first connection event at or after the send: the earliest the peer can have it.
    k = -(-(sent_at - anchor) // interval)
    assert got_at >= anchor + k * interval
    assert got_at > sent_at


def test_a_disconnect_reaches_both_sides_in_a_connection_event_not_before(air):
    async def scenario() -> tuple[float, float, float, float, float]:
        _peripheral, _central, p_conn, c_conn = await _connect(air.air, LONG_INTERVAL_MS)
        link = _link_connection(air.air)
        loop = asyncio.get_running_loop()
        down: dict[str, float] = {}
        both = asyncio.Event()

        def on_down(side: str):
            def record(_reason: int) -> None:
                down[side] = loop.time()
                if len(down) == 2:
                    both.set()
            return record

        p_conn.on(p_conn.EVENT_DISCONNECTION, on_down("peripheral"))
        c_conn.on(c_conn.EVENT_DISCONNECTION, on_down("central"))
        await asyncio.sleep(LONG_INTERVAL_MS / 1000 / 2)   # between two events
        asked_at = loop.time()
        await c_conn.disconnect()
        await asyncio.wait_for(both.wait(), STEP_TIMEOUT_S)
        return asked_at, down["peripheral"], down["central"], link.anchor, link.interval_s

    asked_at, p_down, c_down, anchor, interval = air.run(scenario(), timeout=STEP_TIMEOUT_S * 2)
    first_event = anchor + -(-(asked_at - anchor) // interval) * interval
    # The peripheral hears the LL_TERMINATE_IND in that event; the central reports the link
    # down once it is acknowledged, after that.
    assert p_down >= first_event
    assert c_down >= first_event


def test_fast_timing_delivers_without_connection_events(air_dir):
    from blebridge.sim.air import AirThread
    import os

    thread = AirThread.start(os.path.join(air_dir, "fast.sock"), timing="fast")
    try:
        async def scenario() -> tuple[int, bool]:
            peripheral, _central, p_conn, _c = await _connect(thread.air, LONG_INTERVAL_MS)
            link = _link_connection(thread.air)
            receiver = _controller(thread.air, "lc")
            received = asyncio.Event()
            original = receiver.on_link_acl_data

            def spy(*args: Any) -> None:
                received.set()
                original(*args)

            receiver.on_link_acl_data = spy
            await peripheral.notify_subscriber(p_conn, peripheral.gatt_server.attributes[-1],
                                               SMALL_VALUE, force=True)
            await asyncio.wait_for(received.wait(), STEP_TIMEOUT_S)
            return link.events, thread.air.link.timed

        events, timed = thread.run(scenario(), timeout=STEP_TIMEOUT_S * 2)
        assert timed is False
        assert events == 0   # delivered on the next loop step, no connection event ran
    finally:
        thread.stop()


@pytest.mark.parametrize(("phy", "packets"), [(PHY_1M, 3), (PHY_2M, 5)])
def test_a_7_5_ms_event_carries_as_many_full_packets_as_fit(air, phy, packets):
    # 7.5 ms less T_IFS: LE 1M pairs (2088 + 150 + 80 + 150 us) fit 3 times, LE 2M
    # (1048 + 150 + 44 + 150 us) 5 times.
    async def scenario() -> list[tuple[int, int, int, float]]:
        _peripheral, _central, _p_conn, c_conn = await _connect(air.air, 7.5)
        link = _link_connection(air.air)
        await _wait_until(lambda: link.max_tx_octets == [251, 251])
        if phy != PHY_1M:
            await c_conn.set_phy(tx_phys=[phy], rx_phys=[phy])
            await _wait_until(lambda: link.phy == [phy, phy])
        await _quiet(link)
        link.trace = []
        # Full LL PDUs queued in one loop step, so the next event finds them all.
        now = asyncio.get_running_loop().time()
        for _ in range(packets + 3):
            link.enqueue(PERIPHERAL, linklayer._Pdu(octets=251, deliver=lambda: None,
                                                    enqueued_at=now))
        await _wait_until(lambda: sum(1 for e in link.trace if e[1] == PERIPHERAL) >= packets + 3)
        return link.trace

    trace = air.run(scenario(), timeout=STEP_TIMEOUT_S * 2)
    data = [entry for entry in trace if entry[1] == PERIPHERAL]
    per_event = [sum(1 for entry in data if entry[0] == k) for k in sorted({e[0] for e in data})]
    assert per_event == [packets, 3]


def test_the_negotiated_data_length_is_reported_to_both_stacks(air):
    async def scenario() -> tuple[Any, Any]:
        peripheral, central, p_conn, c_conn = await _connect(air.air, 7.5)
        for conn in (p_conn, c_conn):
            if conn.data_length.max_tx_octets != 251:
                await _wait_event(conn, conn.EVENT_CONNECTION_DATA_LENGTH_CHANGE)
        return p_conn.data_length, c_conn.data_length

    p_length, c_length = air.run(scenario(), timeout=STEP_TIMEOUT_S * 2)
    assert (p_length.max_tx_octets, p_length.max_rx_octets) == (251, 251)
    assert (c_length.max_tx_octets, c_length.max_rx_octets) == (251, 251)


def test_a_phy_update_is_reported_to_both_stacks(air):
    async def scenario() -> tuple[Any, Any, list[int]]:
        _peripheral, _central, p_conn, c_conn = await _connect(air.air, 7.5)
        p_update = asyncio.ensure_future(_wait_event(p_conn, p_conn.EVENT_CONNECTION_PHY_UPDATE))
        c_update = asyncio.ensure_future(_wait_event(c_conn, c_conn.EVENT_CONNECTION_PHY_UPDATE))
        await c_conn.set_phy(tx_phys=[hci.Phy.LE_2M], rx_phys=[hci.Phy.LE_2M])
        (p_phy,) = await p_update
        (c_phy,) = await c_update
        return p_phy, c_phy, _link_connection(air.air).phy

    p_phy, c_phy, link_phy = air.run(scenario(), timeout=STEP_TIMEOUT_S * 2)
    assert (p_phy.tx_phy, p_phy.rx_phy) == (PHY_2M, PHY_2M)
    assert (c_phy.tx_phy, c_phy.rx_phy) == (PHY_2M, PHY_2M)
    assert link_phy == [PHY_2M, PHY_2M]


def test_a_phy_update_asked_by_the_peripheral_is_reported_to_both_stacks(air):
    async def scenario() -> tuple[Any, Any, list[int]]:
        _peripheral, _central, p_conn, c_conn = await _connect(air.air, 7.5)
        p_update = asyncio.ensure_future(_wait_event(p_conn, p_conn.EVENT_CONNECTION_PHY_UPDATE))
        c_update = asyncio.ensure_future(_wait_event(c_conn, c_conn.EVENT_CONNECTION_PHY_UPDATE))
        await p_conn.set_phy(tx_phys=[hci.Phy.LE_2M], rx_phys=[hci.Phy.LE_2M])
        (p_phy,) = await p_update
        (c_phy,) = await c_update
        return p_phy, c_phy, _link_connection(air.air).phy

    p_phy, c_phy, link_phy = air.run(scenario(), timeout=STEP_TIMEOUT_S * 2)
    assert (p_phy.tx_phy, p_phy.rx_phy) == (PHY_2M, PHY_2M)
    assert (c_phy.tx_phy, c_phy.rx_phy) == (PHY_2M, PHY_2M)
    assert link_phy == [PHY_2M, PHY_2M]


def test_a_peer_that_allows_only_1m_keeps_the_link_on_1m(air):
    async def scenario() -> tuple[Any, list[int]]:
        peripheral, _central, _p_conn, c_conn = await _connect(air.air, 7.5)
        await peripheral.set_default_phy(tx_phys=[hci.Phy.LE_1M], rx_phys=[hci.Phy.LE_1M])
        update = asyncio.ensure_future(_wait_event(c_conn, c_conn.EVENT_CONNECTION_PHY_UPDATE))
        await c_conn.set_phy(tx_phys=[hci.Phy.LE_2M], rx_phys=[hci.Phy.LE_2M])
        (c_phy,) = await update
        return c_phy, _link_connection(air.air).phy

    c_phy, link_phy = air.run(scenario(), timeout=STEP_TIMEOUT_S * 2)
    assert (c_phy.tx_phy, c_phy.rx_phy) == (PHY_1M, PHY_1M)
    assert link_phy == [PHY_1M, PHY_1M]


def test_a_scan_hears_advertising_only_inside_its_window(air):
    async def scenario() -> tuple[int, int]:
        scanner = await air.air.add_peer("scanner")
        reports: list[Any] = []
        scanner.on(scanner.EVENT_ADVERTISEMENT, reports.append)
        await scanner.start_scanning(legacy=False, active=False, scan_interval=1000,
                                     scan_window=10)
        controller = _controller(air.air, "scanner")
        pdu = AirAdvPdu(advertiser_address=hci.Address("C0:11:22:33:44:55"), data=b"\x02\x01\x06")
        now = asyncio.get_running_loop().time()
        controller._scan_started = now - 0.5        # half-way through a 1 s interval
        controller.on_advertising_pdu(pdu)
        await asyncio.sleep(0.05)
        outside = len(reports)
        controller._scan_started = asyncio.get_running_loop().time()   # window just opened
        controller.on_advertising_pdu(pdu)
        await asyncio.sleep(0.05)
        return outside, len(reports) - outside

    outside, inside = air.run(scenario())
    assert (outside, inside) == (0, 1)


def test_advertising_events_are_at_least_the_interval_apart(air):
    async def scenario() -> list[float]:
        advertiser = await air.air.add_peer("adv")
        controller = _controller(air.air, "adv")
        sent: list[float] = []
        original = controller.send_advertising_pdu

        def spy(pdu: Any) -> None:
            sent.append(asyncio.get_running_loop().time())
            original(pdu)

        controller.send_advertising_pdu = spy
        from bumble.device import AdvertisingParameters
        adv_set = await advertiser.create_advertising_set(
            advertising_parameters=AdvertisingParameters(primary_advertising_interval_min=20,
                                                         primary_advertising_interval_max=20))
        await _wait_until(lambda: len(sent) >= 6)
        await adv_set.stop()
        return sent

    sent = air.run(scenario(), timeout=STEP_TIMEOUT_S * 2)
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    assert min(gaps) >= 0.020 - 1e-6   # advInterval + advDelay (0..10 ms), never less


def test_a_board_that_vanishes_times_out_on_its_peer_with_reason_0x08(air):
    peripheral = AirClient(air.socket_path, "vanisher")
    central = AirClient(air.socket_path, "survivor")
    try:
        for port in (peripheral, central):
            assert port.call("activate", True) is True
        peripheral.call("adv_start", 20_000, b"\x02\x01\x06", b"", True, True, False, 0)
        central.call("connect", peripheral.addr_type, peripheral.addr, 2000,
                     LOST_PEER_INTERVAL_US, LOST_PEER_INTERVAL_US, 0, LOST_PEER_TIMEOUT_MS)
        central.wait("PERIPHERAL_CONNECT", timeout=STEP_TIMEOUT_S)
        peripheral.wait("CENTRAL_CONNECT", timeout=STEP_TIMEOUT_S)
        gone_at = time.monotonic()
        peripheral.close()   # the board's process dies: its socket closes, no radio-off
        fields = central.wait("PERIPHERAL_DISCONNECT", timeout=STEP_TIMEOUT_S)
        assert fields[-1] == linklayer.CONNECTION_TIMEOUT
        assert time.monotonic() - gone_at >= LOST_PEER_TIMEOUT_MS / 1000
    finally:
        central.close()


async def _wait_until(predicate, timeout: float = STEP_TIMEOUT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)


async def _quiet(link) -> None:
    """Until nothing is queued on ``link`` (the procedures after connecting are done)."""
    await _wait_until(lambda: not link.queues[CENTRAL] and not link.queues[PERIPHERAL])
    await asyncio.sleep(0.05)


def test_a_board_that_turns_its_radio_off_while_advertising_is_heard_no_more(air):
    board = AirClient(air.socket_path, "quitter")
    try:
        assert board.call("activate", True) is True
        board.call("adv_start", 20_000, b"\x02\x01\x06", b"", True, True, False, 0)

        async def scanner() -> Any:
            device = await air.air.add_peer("listener")
            heard: list[Any] = []
            device.on(device.EVENT_ADVERTISEMENT,
                      lambda adv: heard.append(adv) if adv.address == address else None)
            await device.start_scanning(legacy=False, active=False, scan_interval=20,
                                        scan_window=20)
            return heard

        address = hci.Address(bytes(board.addr), board.addr_type)
        heard = air.run(scanner())
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while not air.call(lambda: len(heard)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert air.call(lambda: len(heard)) > 0   # the scanner hears it while it advertises
        assert board.call("activate", False) is False
        air.run(asyncio.sleep(0.1))
        before = air.call(lambda: len(heard))
        air.run(asyncio.sleep(0.3))   # 15 advertising intervals
        assert air.call(lambda: len(heard)) == before
    finally:
        board.close()


def _connect_naming_no_interval(air_thread) -> float:
    """Two boards on ``air_thread``; the central connects with no interval named. Returns the
    link's interval, ms."""
    peripheral = AirClient(air_thread.socket_path, "dflt-p")
    central = AirClient(air_thread.socket_path, "dflt-c")
    try:
        for port in (peripheral, central):
            assert port.call("activate", True) is True
        peripheral.call("adv_start", 20_000, b"\x02\x01\x06", b"", True, True, False, 0)
        central.call("connect", peripheral.addr_type, peripheral.addr, 2000)
        central.wait("PERIPHERAL_CONNECT", timeout=STEP_TIMEOUT_S)
        (connection,) = air_thread.air.link.connections_of(
            next(c for c in air_thread.air.link.controllers if c.name == "board:dflt-c"))
        return connection.interval_s * 1000
    finally:
        central.close()
        peripheral.close()


def test_a_connect_naming_no_interval_runs_at_nimbles_default_of_50_ms(air_dir, monkeypatch):
    import os

    from blebridge.sim.air import AirThread

    monkeypatch.delenv(linklayer.CONN_INTERVAL_ENV, raising=False)
    thread = AirThread.start(os.path.join(air_dir, "dflt.sock"))
    try:
        assert _connect_naming_no_interval(thread) == pytest.approx(50.0)
    finally:
        thread.stop()


def test_an_air_given_a_connection_interval_uses_it_for_a_connect_naming_none(air_dir,
                                                                              monkeypatch):
    import os

    from blebridge.sim.air import AirThread

    monkeypatch.setenv(linklayer.CONN_INTERVAL_ENV, "7.5")
    thread = AirThread.start(os.path.join(air_dir, "short.sock"))
    try:
        assert _connect_naming_no_interval(thread) == pytest.approx(7.5)
    finally:
        thread.stop()


def test_the_controller_connects_at_the_maximum_of_the_range_asked_for(air):
    async def scenario() -> float:
        peripheral = await air.air.add_peer("rp")
        central = await air.air.add_peer("rc")
        await peripheral.start_advertising(advertising_interval_min=20,
                                           advertising_interval_max=20)
        prefs = ConnectionParametersPreferences(connection_interval_min=15,
                                                connection_interval_max=30)
        c_conn = await central.connect(peripheral.random_address,
                                       connection_parameters_preferences={hci.HCI_LE_1M_PHY: prefs})
        link = _link_connection(air.air)
        assert c_conn.parameters.connection_interval == pytest.approx(30.0)
        return link.interval_s * 1000

    assert air.run(scenario(), timeout=STEP_TIMEOUT_S * 2) == pytest.approx(30.0)


@pytest.mark.parametrize("value", ["fast", "5", "4001"])
def test_a_connection_interval_outside_7_5_to_4000_ms_is_refused_with_value_error(monkeypatch,
                                                                                  value):
    monkeypatch.setenv(linklayer.CONN_INTERVAL_ENV, value)
    with pytest.raises(ValueError, match=linklayer.CONN_INTERVAL_ENV):
        linklayer.conn_interval_from_env()
