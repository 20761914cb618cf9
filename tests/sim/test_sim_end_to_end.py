"""Simulated boards end to end: host RPC client -> pty -> bb_sim (core + port sim) -> air."""
from __future__ import annotations

import os
import signal
import time

import pytest

from blebridge.errors import BoardError
from blebridge.protocol import CONSTANTS, LIMITS
from blebridge.sim import launcher
from blebridge.sim.air import address_for_name

FLAG = CONSTANTS["flag"]
ADV = CONSTANTS["adv_type"]
CFG = CONSTANTS["config"]
IO = CONSTANTS["io"]
PASSKEY = CONSTANTS["passkey_action"]
CONN_NONE = 0xFFFF
HR_SERVICE = (0x180D).to_bytes(2, "little")
HR_MEASUREMENT = (0x2A37).to_bytes(2, "little")
USER_DESCRIPTION = (0x2901).to_bytes(2, "little")
ADV_DATA = b"\x02\x01\x06\x06\x09alice"
INTERVAL_US = 20_000  # explicit 20 ms intervals (SIMULATOR-NOTES.md)
#: Peer writes of 200 bytes a Bumble central sends back to back in the flood test: about
#: 90 KB of events, more than the sim port's queue (BB_SIM_AIR_EVQ_BYTES, 32 KiB) holds.
FLOOD_WRITES = 400
#: Largest preferred ATT MTU a board accepts (schema: MAX_ATTR_LEN + 3), bytes.
MAX_MTU = LIMITS["MAX_ATTR_LEN"] + 3


def mac(board) -> tuple[int, bytes]:
    addr_type, addr = board.call("config_get", CFG["MAC"])
    return addr_type, addr


def connect(central, c_ev, peripheral, p_ev) -> tuple[int, int]:
    """Connect central to peripheral; returns (conn on the central, conn on the peripheral)."""
    peripheral.call("gap_advertise_start", INTERVAL_US, ADV_DATA, b"", True, True, False, 0)
    addr_type, addr = mac(peripheral)
    central.call("gap_connect", addr_type, addr, 2000)
    c_conn = c_ev.wait("PERIPHERAL_CONNECT")[0]
    p_conn = p_ev.wait("CENTRAL_CONNECT")[0]
    return c_conn, p_conn


@pytest.fixture
def pair_of_boards(open_sim):
    alice, a_ev = open_sim("alice")
    bob, b_ev = open_sim("bob")
    for board in (alice, bob):
        assert board.call("ble_active", True) is True
    return alice, a_ev, bob, b_ev


def register_hr(board) -> tuple[int, int, int]:
    """A heart-rate-like service; returns (value handle, cccd handle, descriptor handle)."""
    result = board.call("gatts_register_services", [
        [HR_SERVICE, [[HR_MEASUREMENT,
                       FLAG["READ"] | FLAG["WRITE"] | FLAG["NOTIFY"] | FLAG["INDICATE"],
                       512, b"\x00\x48", [[USER_DESCRIPTION, FLAG["READ"], 20, b"beats"]]]]],
    ])
    _svc, chrs = result[0]
    _decl, value, cccd, dscs = chrs[0]
    return value, cccd, dscs[0]


def test_board_address_is_derived_from_its_name(pair_of_boards):
    alice, _a_ev, bob, _b_ev = pair_of_boards
    assert mac(alice) == (1, bytes(address_for_name("alice")))
    assert mac(bob) == (1, bytes(address_for_name("bob")))


def test_scanner_sees_advertising_data_and_scan_response(pair_of_boards):
    alice, _a_ev, bob, b_ev = pair_of_boards
    alice.call("gap_advertise_start", INTERVAL_US, ADV_DATA, b"\x04\x09rsp", True, True, False, 0)
    _addr_type, addr = mac(alice)
    bob.call("gap_scan_start", 500, 30_000, 30_000, True, False)
    adv = b_ev.wait("SCAN_RESULT", lambda f: f[1] == addr and f[2] == ADV["ADV_IND"])
    rsp = b_ev.wait("SCAN_RESULT", lambda f: f[1] == addr and f[2] == ADV["SCAN_RSP"])
    assert adv[4] == ADV_DATA and rsp[4] == b"\x04\x09rsp"
    b_ev.wait("SCAN_DONE")


def test_legacy_non_connectable_advertising_is_visible(pair_of_boards):
    alice, _a_ev, bob, b_ev = pair_of_boards
    alice.call("gap_advertise_start", INTERVAL_US, ADV_DATA, b"", False, False, False, 0)
    _addr_type, addr = mac(alice)
    bob.call("gap_scan_start", 300, 30_000, 30_000, False, True)
    fields = b_ev.wait("SCAN_RESULT", lambda f: f[1] == addr)
    assert fields[2] == ADV["ADV_NONCONN_IND"]


def test_board_reset_while_advertising_is_not_seen_advertising_any_more(pair_of_boards):
    alice, _a_ev, bob, b_ev = pair_of_boards
    alice.call("gap_advertise_start", INTERVAL_US, ADV_DATA, b"", True, True, False, 0)
    _addr_type, addr = mac(alice)
    alice.call("reset")
    bob.call("gap_scan_start", 300, 30_000, 30_000, False, True)
    b_ev.wait("SCAN_DONE")
    assert [e.fields for e in b_ev.events if e.name == "SCAN_RESULT" and e.fields[1] == addr] == []


def test_connect_and_disconnect_report_both_sides(pair_of_boards):
    alice, a_ev, bob, b_ev = pair_of_boards
    c_conn, p_conn = connect(bob, b_ev, alice, a_ev)
    bob.call("gap_disconnect", c_conn)
    assert b_ev.wait("PERIPHERAL_DISCONNECT")[0] == c_conn
    assert a_ev.wait("CENTRAL_DISCONNECT")[0] == p_conn


def test_connect_to_absent_peer_times_out_with_conn_none(pair_of_boards):
    _alice, _a_ev, bob, b_ev = pair_of_boards
    bob.call("gap_connect", 1, bytes(address_for_name("nobody")), 300)
    assert b_ev.wait("PERIPHERAL_DISCONNECT")[0] == CONN_NONE


def test_gatt_discover_read_write_notify_indicate(pair_of_boards):
    alice, a_ev, bob, b_ev = pair_of_boards
    value, cccd, dsc = register_hr(alice)
    c_conn, p_conn = connect(bob, b_ev, alice, a_ev)

    bob.call("gattc_discover_services", c_conn, HR_SERVICE)
    _conn, start, end, uuid = b_ev.wait("GATTC_SERVICE_RESULT")
    assert uuid == HR_SERVICE
    assert b_ev.wait("GATTC_SERVICE_DONE") == (c_conn, 0)
    bob.call("gattc_discover_characteristics", c_conn, start, end)
    chr_fields = b_ev.wait("GATTC_CHARACTERISTIC_RESULT")
    assert chr_fields[2] == value and chr_fields[4] == HR_MEASUREMENT
    b_ev.wait("GATTC_CHARACTERISTIC_DONE")
    bob.call("gattc_discover_descriptors", c_conn, value + 1, end)
    b_ev.wait("GATTC_DESCRIPTOR_DONE")

    bob.call("gattc_read", c_conn, value)
    assert b_ev.wait("GATTC_READ_RESULT") == (c_conn, value, b"\x00\x48")
    bob.call("gattc_read", c_conn, dsc)
    assert b_ev.wait("GATTC_READ_RESULT")[2] == b"beats"

    bob.call("gattc_write", c_conn, value, b"\x01\x02\x03", 1)
    assert b_ev.wait("GATTC_WRITE_DONE") == (c_conn, value, 0)
    assert a_ev.wait("GATTS_WRITE") == (p_conn, value, b"\x01\x02\x03")
    assert alice.call("gatts_read", value) == b"\x01\x02\x03"

    alice.call("gatts_notify", p_conn, value, b"\x10")
    assert b_ev.wait("GATTC_NOTIFY") == (c_conn, value, b"\x10")
    alice.call("gatts_indicate", p_conn, value, b"\x11")
    assert b_ev.wait("GATTC_INDICATE") == (c_conn, value, b"\x11")
    assert a_ev.wait("GATTS_INDICATE_DONE") == (p_conn, value, 0)


def test_gatts_write_with_update_notifies_subscribed_peer(pair_of_boards):
    alice, a_ev, bob, b_ev = pair_of_boards
    value, cccd, _dsc = register_hr(alice)
    c_conn, _p_conn = connect(bob, b_ev, alice, a_ev)
    bob.call("gattc_write", c_conn, cccd, b"\x01\x00", 1)
    b_ev.wait("GATTC_WRITE_DONE")
    alice.call("gatts_write", value, b"\x00\x50", True)
    assert b_ev.wait("GATTC_NOTIFY") == (c_conn, value, b"\x00\x50")


def test_long_value_is_read_in_full_after_mtu_exchange(pair_of_boards):
    alice, a_ev, bob, b_ev = pair_of_boards
    for board in (alice, bob):
        board.call("config_set", CFG["MTU"], MAX_MTU)
    value, _cccd, _dsc = register_hr(alice)
    c_conn, p_conn = connect(bob, b_ev, alice, a_ev)
    bob.call("gattc_exchange_mtu", c_conn)
    assert b_ev.wait("MTU_EXCHANGED") == (c_conn, MAX_MTU)
    assert a_ev.wait("MTU_EXCHANGED") == (p_conn, MAX_MTU)
    long_value = bytes(range(256)) * 2 + b"xyz"
    alice.call("gatts_write", value, long_value[:512], False)
    bob.call("gattc_read", c_conn, value)
    assert b_ev.wait("GATTC_READ_RESULT")[2] == long_value[:512]


def test_peer_read_waits_for_host_authorisation(pair_of_boards):
    alice, a_ev, bob, b_ev = pair_of_boards
    result = alice.call("gatts_register_services", [[HR_SERVICE, [[HR_MEASUREMENT,
                        FLAG["READ"] | FLAG["READ_AUTHORIZED"], 20, b"secret", []]]]])
    value = result[0][1][0][1]
    c_conn, _p_conn = connect(bob, b_ev, alice, a_ev)
    bob.call("gattc_read", c_conn, value)
    token, _conn, handle = a_ev.wait("GATTS_READ_REQUEST")
    assert handle == value
    alice.call("reply", token, CONSTANTS["att_error"]["INSUFFICIENT_AUTHORIZATION"])
    assert b_ev.wait("GATTC_READ_DONE") == (c_conn, value, 0x08)


def test_l2cap_transfer_stalls_and_resumes_on_credits(pair_of_boards):
    alice, a_ev, bob, b_ev = pair_of_boards
    c_conn, p_conn = connect(bob, b_ev, alice, a_ev)
    alice.call("l2cap_listen", 0x80, 1024)
    bob.call("l2cap_connect", c_conn, 0x80, 1024)
    token = a_ev.wait("L2CAP_ACCEPT")[0]
    alice.call("reply", token, 0)
    cid = b_ev.wait("L2CAP_CONNECT")[1]
    a_ev.wait("L2CAP_CONNECT")
    sdus = [bytes([i]) * 1024 for i in range(4)]
    stalls = 0
    for sdu in sdus:
        while True:
            try:
                accepted = bob.call("l2cap_send", c_conn, cid, sdu)
            except BoardError as exc:
                assert exc.status_name == "EAGAIN"
                b_ev.wait("L2CAP_SEND_READY")
                continue
            break
        if accepted is False:
            stalls += 1
            b_ev.wait("L2CAP_SEND_READY")
    received = [a_ev.wait("L2CAP_RECV")[2] for _ in sdus]
    assert received == sdus
    assert stalls >= 1  # 1024-byte SDUs need more segments than one credit window


def test_second_l2cap_channel_on_one_connection_opens_after_the_first_closed(pair_of_boards):
    alice, a_ev, bob, b_ev = pair_of_boards
    c_conn, p_conn = connect(bob, b_ev, alice, a_ev)
    alice.call("l2cap_listen", 0x80, 256)
    for _round in range(2):
        bob.call("l2cap_connect", c_conn, 0x80, 256)
        token = a_ev.wait("L2CAP_ACCEPT")[0]
        alice.call("reply", token, 0)
        cid = b_ev.wait("L2CAP_CONNECT")[1]
        a_ev.wait("L2CAP_CONNECT")
        bob.call("l2cap_disconnect", c_conn, cid)
        assert b_ev.wait("L2CAP_DISCONNECT")[3] == 0
        assert a_ev.wait("L2CAP_DISCONNECT")[3] == 0


def test_pairing_with_passkey_stores_bond_through_host(pair_of_boards):
    alice, a_ev, bob, b_ev = pair_of_boards
    alice.call("config_set", CFG["IO"], IO["DISPLAY_ONLY"])
    bob.call("config_set", CFG["IO"], IO["KEYBOARD_ONLY"])
    for board in (alice, bob):
        board.call("config_set", CFG["MITM"], True)
        board.call("config_set", CFG["BOND"], True)
    secrets: dict[bytes, bytes] = {}

    def keep_secrets(board, events):
        def on_event(ev):
            if ev.name == "SET_SECRET":
                token, _type, key, value = ev.fields
                secrets[key] = value
                board.call_nowait("reply", token, True)
            elif ev.name == "GET_SECRET":
                token, _type, _index, key = ev.fields
                board.call_nowait("reply", token, secrets.get(key))
        board.add_event_listener(on_event)

    keep_secrets(alice, a_ev)
    keep_secrets(bob, b_ev)
    c_conn, p_conn = connect(bob, b_ev, alice, a_ev)
    bob.call("gap_pair", c_conn)
    _conn, action, shown = a_ev.wait("PASSKEY_ACTION")
    assert action == PASSKEY["DISPLAY"]
    alice.call("gap_passkey", p_conn, action, shown)
    _conn, action, _zero = b_ev.wait("PASSKEY_ACTION")
    assert action == PASSKEY["INPUT"]
    bob.call("gap_passkey", c_conn, action, shown)
    enc = b_ev.wait("ENCRYPTION_UPDATE")
    assert enc[1:4] == (True, True, True)
    assert a_ev.wait("ENCRYPTION_UPDATE")[1:4] == (True, True, True)
    assert len(secrets) == 2
    assert bob.call("sec_encryption_state", c_conn)[:3] == [True, True, True]


def test_closing_an_owned_board_ends_its_process(air, sim_firmware):
    board = launcher.start_board("carol", air=air.socket_path)
    assert board.owned and board.alive()
    board.stop()
    assert not board.alive()


def test_detached_board_is_listed_and_stopped_by_name(air, sim_firmware):
    board = launcher.start_board("dave", air=air.socket_path, detached=True)
    try:
        assert [b.name for b in launcher.list_boards(air.socket_path)] == ["dave"]
        assert launcher.resolve("dave", air=air.socket_path).pid == board.pid
        assert launcher.stop_board("dave", air=air.socket_path)
        deadline = time.monotonic() + 5
        while launcher._pid_alive(board.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
            os.waitpid(board.pid, os.WNOHANG)
        assert launcher.list_boards(air.socket_path) == []
    finally:
        board.stop()


def test_starting_a_running_detached_board_again_says_it_is_running(air, sim_firmware):
    board = launcher.start_board("erin", air=air.socket_path, detached=True)
    try:
        with pytest.raises(launcher.SimLaunchError, match="already running"):
            launcher.start_board("erin", air=air.socket_path, detached=True)
        assert launcher.resolve("erin", air=air.socket_path).pid == board.pid
    finally:
        board.stop()


def test_board_reset_signal_sends_boot_with_new_id(open_sim):
    alice, a_ev = open_sim("alice")
    old_boot = alice.info.boot_id
    alice.transport.sim_board.reset()
    boot_id = a_ev.wait("BOOT")[0]
    assert boot_id != old_boot


def test_board_exits_when_the_air_goes_away(air_dir, sim_firmware):
    from blebridge.sim.air import AirThread

    air = AirThread.start(os.path.join(air_dir, "air.sock"))
    board = launcher.start_board("erin", air=air.socket_path)
    try:
        air.stop()
        deadline = time.monotonic() + 5
        while board.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not board.alive()
    finally:
        board.stop()
        if board.alive():
            os.kill(board.pid, signal.SIGKILL)


def test_board_reads_a_bumble_heart_rate_sensor_on_the_same_air(air, open_sim):
    from bumble import gatt

    async def make_sensor():
        sensor = await air.air.add_peer("hrs")
        measurement = gatt.Characteristic(gatt.GATT_HEART_RATE_MEASUREMENT_CHARACTERISTIC,
                                          gatt.Characteristic.Properties.READ,
                                          gatt.Characteristic.READABLE, b"\x00\x3c")
        sensor.add_service(gatt.Service(gatt.GATT_HEART_RATE_SERVICE, [measurement]))
        await sensor.start_advertising(advertising_interval_min=20, advertising_interval_max=20)
        return sensor, measurement.handle

    sensor, handle = air.run(make_sensor())
    bob, b_ev = open_sim("bob")
    bob.call("ble_active", True)
    bob.call("gap_connect", 1, bytes(sensor.random_address), 2000)
    conn = b_ev.wait("PERIPHERAL_CONNECT")[0]
    bob.call("gattc_read", conn, handle)
    assert b_ev.wait("GATTC_READ_RESULT") == (conn, handle, b"\x00\x3c")


def test_flood_of_peer_writes_reaches_the_host_whole(air, open_sim):
    alice, a_ev = open_sim("alice")
    alice.call("ble_active", True)
    result = alice.call("gatts_register_services", [[HR_SERVICE, [[HR_MEASUREMENT,
                        FLAG["WRITE_NO_RESPONSE"], 512, b"", []]]]])
    value = result[0][1][0][1]
    alice.call("gap_advertise_start", INTERVAL_US, ADV_DATA, b"", True, True, False, 0)
    writes = [i.to_bytes(2, "little") * 100 for i in range(FLOOD_WRITES)]

    async def flood() -> None:
        # All in one go on the air's loop: each write the board takes makes it call the air
        # (gatts_value), and that call has to read every event sent before its response.
        phone = await air.air.add_peer("phone")
        connection = await phone.connect(address_for_name("alice"))
        await connection.gatt_client.request_mtu(517)
        for data in writes:
            await connection.gatt_client.write_value(value, data, with_response=False)

    air.run(flood())
    got = [a_ev.wait("GATTS_WRITE")[2] for _ in writes]
    assert got == writes


def test_connect_cancel_reports_conn_none(pair_of_boards):
    _alice, _a_ev, bob, b_ev = pair_of_boards
    bob.call("gap_connect", 1, bytes(address_for_name("nobody")), 0)
    bob.call("gap_connect_cancel")
    assert b_ev.wait("PERIPHERAL_DISCONNECT")[0] == CONN_NONE


def test_passive_scan_gets_no_scan_response(pair_of_boards):
    alice, _a_ev, bob, b_ev = pair_of_boards
    alice.call("gap_advertise_start", INTERVAL_US, ADV_DATA, b"\x04\x09rsp", True, True, False, 0)
    _addr_type, addr = mac(alice)
    bob.call("gap_scan_start", 200, 30_000, 30_000, False, False)
    b_ev.wait("SCAN_DONE")
    kinds = {f.fields[2] for f in b_ev.board_events("SCAN_RESULT") if f.fields[1] == addr}
    assert kinds == {ADV["ADV_IND"]}


def test_closing_the_host_board_stops_its_firmware_process(open_sim):
    alice, _a_ev = open_sim("alice")
    sim_board = alice.transport.sim_board
    alice.close()
    deadline = time.monotonic() + 5
    while sim_board.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not sim_board.alive()


def test_air_exits_after_idle_time_without_boards(air_dir):
    import subprocess
    import sys

    sock = os.path.join(air_dir, "idle.sock")
    env = dict(os.environ, PYTHONPATH=str(launcher._PACKAGE_ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "blebridge.sim.air", "--socket", sock,
                             "--idle-exit", "0.5"], env=env)
    try:
        assert proc.wait(timeout=15) == 0
        assert not os.path.exists(sock)
        assert os.path.exists(os.path.join(air_dir, "idle.log"))
    finally:
        if proc.poll() is None:
            proc.kill()


# -- Security at the board, checked by an independent BLE stack (a Bumble phone) ---------------
SECRET_CHR = bytes(range(16))    # a 128-bit UUID, LSB first as on the wire


def serve_secured(board, flags, bonds=None) -> int:
    """Register one characteristic with these flags, advertise; returns its value handle.
    With bonds (a dict) the board bonds and its host keeps them there; without, it keeps none:
    bonding off, every GET_SECRET answered "none" at once (an unencrypted access to a secured
    value asks whether the peer has a bond)."""
    board.call("config_set", CFG["BOND"], bonds is not None)
    store = {} if bonds is None else bonds

    def host_bond_store(ev):
        if ev.name == "SET_SECRET":
            token, _type, key, value = ev.fields
            store[key] = value
            board.call_nowait("reply", token, True)
        elif ev.name == "GET_SECRET":
            token, _type, _index, key = ev.fields
            board.call_nowait("reply", token, store.get(key))
    board.add_event_listener(host_bond_store)
    result = board.call("gatts_register_services",
                        [[HR_SERVICE, [[SECRET_CHR, flags, 16, b"secret", []]]]])
    board.call("gap_advertise_start", INTERVAL_US, ADV_DATA, b"", True, True, False, 0)
    return result[0][1][0][1]


def phone_reads(air, connect_pair_read):
    """Run connect_pair_read(phone) on the air's loop; a fresh Bumble phone each time."""
    async def run():
        phone = await air.air.add_peer("phone")
        return await connect_pair_read(phone)
    return air.run(run())


def test_bumble_phone_reads_an_encrypted_value_only_after_pairing(air, open_sim):
    from bumble import att
    alice, _a_ev = open_sim("alice")
    alice.call("ble_active", True)
    handle = serve_secured(alice, FLAG["READ"] | FLAG["READ_ENCRYPTED"])

    async def connect_pair_read(phone):
        connection = await phone.connect(address_for_name("alice"))
        try:
            await connection.gatt_client.read_value(handle)
            before = 0
        except att.ATT_Error as exc:
            before = exc.error_code
        await connection.pair()     # Bumble's default delegate has no IO: Just Works
        return before, await connection.gatt_client.read_value(handle)

    before, after = phone_reads(air, connect_pair_read)
    assert before == CONSTANTS["att_error"]["INSUFFICIENT_AUTHENTICATION"]
    assert after == b"secret"


def test_bumble_phone_paired_without_mitm_is_refused_an_authenticated_value(air, open_sim):
    from bumble import att
    alice, _a_ev = open_sim("alice")
    alice.call("ble_active", True)
    handle = serve_secured(alice, FLAG["READ"] | FLAG["READ_AUTHENTICATED"])

    async def connect_pair_read(phone):
        connection = await phone.connect(address_for_name("alice"))
        await connection.pair()
        try:
            await connection.gatt_client.read_value(handle)
        except att.ATT_Error as exc:
            return exc.error_code
        return 0

    assert phone_reads(air, connect_pair_read) == CONSTANTS["att_error"]["INSUFFICIENT_AUTHENTICATION"]


def test_characteristic_with_its_own_cccd_descriptor_registers(pair_of_boards):
    alice, _a_ev, _bob, _b_ev = pair_of_boards
    cccd_uuid = (0x2902).to_bytes(2, "little")
    result = alice.call("gatts_register_services", [[HR_SERVICE, [[
        HR_MEASUREMENT, FLAG["READ"] | FLAG["NOTIFY"] | FLAG["READ_ENCRYPTED"], 16, b"",
        [[cccd_uuid, FLAG["READ"] | FLAG["WRITE"], 2, b"\x00\x00"]]]]]])
    _decl, value, _cccd, (dsc,) = result[0][1][0]
    assert dsc == value + 1


def test_bumble_phone_with_a_legacy_bond_re_encrypts_and_reads(air, open_sim):
    from bumble import pairing
    alice, _a_ev = open_sim("alice")
    alice.call("ble_active", True)
    bonds: dict[bytes, bytes] = {}
    handle = serve_secured(alice, FLAG["READ"] | FLAG["READ_ENCRYPTED"], bonds)

    async def bond_reconnect_read(phone):
        phone.pairing_config_factory = lambda connection: pairing.PairingConfig(sc=False, mitm=False)
        connection = await phone.connect(address_for_name("alice"))
        await connection.pair()
        await connection.disconnect()
        alice.call_nowait("gap_advertise_start", INTERVAL_US, ADV_DATA, b"", True, True, False, 0)
        connection = await phone.connect(address_for_name("alice"))
        await connection.encrypt()      # with the bond's LTK: no pairing
        return await connection.gatt_client.read_value(handle)

    assert phone_reads(air, bond_reconnect_read) == b"secret"
    assert bonds    # the board bonded
