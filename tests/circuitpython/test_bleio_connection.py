"""_bleio between two simulated boards: scanning, connecting, discovery, reads and writes,
notifications into buffers, pairing, permissions the board enforces."""
import os
import signal
import threading

import pytest

from blebridge.circuitpython import _bleio, using
from blebridge.errors import BoardLost
from bleio_helpers import FAST, FLAGS, RX, SECURE, SVC, TIMEOUT, TX, Peripheral, connect, remote, wait_for

pytestmark = pytest.mark.boards(2)
#: The bond store's kind of secret for a peer's keys (protocol constants.secret_type).
PEER_SEC = 2


def _scan_for(central, address, **kwargs):
    kwargs.setdefault("interval", FAST)
    kwargs.setdefault("window", FAST)
    kwargs.setdefault("timeout", TIMEOUT)
    try:
        for entry in central.start_scan(**kwargs):
            if entry.address == address:
                return entry
    finally:
        central.stop_scan()
    return None


def test_scan_finds_the_advertisement(pair):
    p, c = pair
    data = FLAGS + bytes([5, 0x09]) + b"pbrd"
    p.start_advertising(data, interval=FAST)
    entry = _scan_for(c, p.address)
    assert (entry.advertisement_bytes, entry.connectable, entry.scan_response) == (data, True, False)


def test_scan_entry_rssi_is_an_int(pair):
    p, c = pair
    p.start_advertising(FLAGS, interval=FAST)
    assert isinstance(_scan_for(c, p.address).rssi, int)


def test_scan_returns_scan_responses_separately(pair):
    p, c = pair
    p.start_advertising(FLAGS, scan_response=bytes([4, 0x09]) + b"rsp", interval=FAST)
    results = c.start_scan(interval=FAST, window=FAST, timeout=TIMEOUT)
    try:
        entry = next(e for e in results if e.address == p.address and e.scan_response)
    finally:
        c.stop_scan()
    assert entry.advertisement_bytes == bytes([4, 0x09]) + b"rsp"


def test_scan_prefixes_leave_out_other_advertisements(pair):
    p, c = pair
    p.start_advertising(FLAGS, interval=FAST)
    assert _scan_for(c, p.address, prefixes=bytes([1, 0xEE]), timeout=1) is None


def test_scan_minimum_rssi_leaves_out_weaker_advertisements(pair):
    p, c = pair
    p.start_advertising(FLAGS, interval=FAST)
    assert _scan_for(c, p.address, minimum_rssi=127, timeout=1) is None


def test_extended_advertisement_is_scanned_whole(pair):
    p, c = pair
    data = FLAGS + bytes([60, 0xFF]) + bytes(range(59))
    p.start_advertising(data, interval=FAST)
    assert _scan_for(c, p.address, extended=True).advertisement_bytes == data


def test_connect_returns_a_connected_connection(pair):
    p, c = pair
    _, cconn = connect(p, c)
    assert cconn.connected and c.connections == (cconn,) and c.connected


def test_peripheral_sees_the_connection(pair):
    p, c = pair
    pconn, _ = connect(p, c)
    assert pconn.connected and p.connections == (pconn,)


def test_connection_ends_advertising(pair):
    p, c = pair
    connect(p, c)
    assert not p.advertising


def test_connections_give_the_same_object_each_time(pair):
    p, c = pair
    connect(p, c)
    assert p.connections[0] is p.connections[0] and hash(p.connections[0]) == hash(p.connections[0])


def test_max_packet_length_follows_the_exchanged_mtu(pair):
    p, c = pair
    _, cconn = connect(p, c)
    assert cconn.max_packet_length > 20


def test_discover_all_services_finds_the_peripherals(pair):
    p, c = pair
    Peripheral(p)
    _, cconn = connect(p, c)
    assert SVC in [s.uuid for s in cconn.discover_remote_services()]


def test_discover_whitelist_gives_only_those_services(pair):
    p, c = pair
    Peripheral(p)
    _, cconn = connect(p, c)
    (service,) = cconn.discover_remote_services([SVC])
    assert (service.uuid, service.remote, [ch.uuid for ch in service.characteristics]) == (SVC, True, [TX, RX, SECURE])


def test_discover_whitelist_with_non_uuid_raises_type_error(pair):
    p, c = pair
    _, cconn = connect(p, c)
    with pytest.raises(TypeError, match="non-UUID"):
        cconn.discover_remote_services([0x180D])


def test_remote_characteristic_properties_are_circuitpythons(pair):
    p, c = pair
    Peripheral(p)
    _, cconn = connect(p, c)
    C = _bleio.Characteristic
    assert remote(cconn, TX).properties == C.READ | C.NOTIFY | C.INDICATE


def test_remote_characteristic_has_its_cccd(pair):
    p, c = pair
    Peripheral(p)
    _, cconn = connect(p, c)
    assert [d.uuid for d in remote(cconn, TX).descriptors] == [_bleio.UUID(0x2902)]


def test_remote_read_gives_the_local_value(pair):
    p, c = pair
    per = Peripheral(p)
    per.tx.value = b"remote read"
    _, cconn = connect(p, c)
    assert remote(cconn, TX).value == b"remote read"


def test_remote_write_sets_the_local_value(pair):
    p, c = pair
    per = Peripheral(p)
    _, cconn = connect(p, c)
    rx = remote(cconn, RX)
    rx.value = b"written"
    wait_for(lambda: per.rx.value == b"written")


def test_peer_writes_fill_a_local_characteristic_buffer(pair):
    p, c = pair
    per = Peripheral(p)
    buf = _bleio.CharacteristicBuffer(per.rx, timeout=TIMEOUT)
    _, cconn = connect(p, c)
    remote(cconn, RX).value = b"line\n"
    assert buf.readline() == b"line\n"


def test_notifications_fill_a_remote_characteristic_buffer(pair):
    p, c = pair
    per = Peripheral(p)
    _, cconn = connect(p, c)
    tx = remote(cconn, TX)
    tx.set_cccd(notify=True)
    buf = _bleio.CharacteristicBuffer(tx, timeout=TIMEOUT, buffer_size=64)
    per.tx.value = b"abc"
    per.tx.value = b"def"
    assert buf.read(6) == b"abcdef"


def test_characteristic_buffer_in_waiting_counts_buffered_bytes(pair):
    p, c = pair
    per = Peripheral(p)
    _, cconn = connect(p, c)
    tx = remote(cconn, TX)
    tx.set_cccd(notify=True)
    buf = _bleio.CharacteristicBuffer(tx, timeout=TIMEOUT)
    per.tx.value = b"1234"
    assert wait_for(lambda: buf.in_waiting == 4)


def test_characteristic_buffer_reset_input_buffer_empties_it(pair):
    p, c = pair
    per = Peripheral(p)
    _, cconn = connect(p, c)
    tx = remote(cconn, TX)
    tx.set_cccd(notify=True)
    buf = _bleio.CharacteristicBuffer(tx, timeout=0.1)
    per.tx.value = b"1234"
    wait_for(lambda: buf.in_waiting == 4)
    buf.reset_input_buffer()
    assert buf.in_waiting == 0


def test_characteristic_buffer_keeps_at_most_buffer_size_bytes(pair):
    p, c = pair
    per = Peripheral(p)
    _, cconn = connect(p, c)
    tx = remote(cconn, TX)
    tx.set_cccd(notify=True)
    buf = _bleio.CharacteristicBuffer(tx, timeout=0.1, buffer_size=3)
    per.tx.value = b"12345"
    wait_for(lambda: buf.in_waiting)
    assert buf.read(10) == b"123"


def test_remote_characteristic_buffer_after_disconnect_raises_connection_error(pair):
    p, c = pair
    Peripheral(p)
    _, cconn = connect(p, c)
    buf = _bleio.CharacteristicBuffer(remote(cconn, TX))
    cconn.disconnect()
    with pytest.raises(ConnectionError, match="Not connected"):
        buf.read(1)


def test_indications_fill_a_packet_buffer(pair):
    p, c = pair
    per = Peripheral(p)
    _, cconn = connect(p, c)
    tx = remote(cconn, TX)
    tx.set_cccd(indicate=True)
    pb = _bleio.PacketBuffer(tx, buffer_size=4)
    per.tx.value = b"packet"
    buf = bytearray(pb.incoming_packet_length)
    n = wait_for(lambda: pb.readinto(buf))
    assert buf[:n] == b"packet"


def test_client_packet_buffer_subscribes_and_receives_notifications(pair):
    p, c = pair
    per = Peripheral(p)
    local = _bleio.PacketBuffer(per.tx, buffer_size=4)
    _, cconn = connect(p, c)
    pb = _bleio.PacketBuffer(remote(cconn, TX), buffer_size=4)
    assert local.write(b"one", header=b"#") == 4
    buf = bytearray(pb.incoming_packet_length)
    n = wait_for(lambda: pb.readinto(buf))
    assert buf[:n] == b"#one"


def test_client_packet_buffer_writes_reach_the_peripherals(pair):
    p, c = pair
    per = Peripheral(p)
    local = _bleio.PacketBuffer(per.rx, buffer_size=4)
    _, cconn = connect(p, c)
    pb = _bleio.PacketBuffer(remote(cconn, RX), buffer_size=4)
    pb.write(b"hello")
    buf = bytearray(100)
    n = wait_for(lambda: local.readinto(buf))
    assert buf[:n] == b"hello"


def test_packet_buffer_readinto_short_buffer_raises_value_error(pair):
    p, c = pair
    per = Peripheral(p)
    local = _bleio.PacketBuffer(per.rx, buffer_size=4)
    _, cconn = connect(p, c)
    remote(cconn, RX).value = b"too long"
    wait_for(lambda: local._packets)
    with pytest.raises(ValueError, match="Buffer too short by 6 bytes"):
        local.readinto(bytearray(2))


def test_packet_buffer_write_over_packet_length_raises_value_error(pair):
    p, c = pair
    per = Peripheral(p, max_length=10)
    local = _bleio.PacketBuffer(per.tx, buffer_size=4)
    connect(p, c)
    with pytest.raises(ValueError, match="larger than outgoing_packet_length"):
        local.write(bytes(11))


def test_outgoing_packet_length_is_bounded_by_max_length(pair):
    p, c = pair
    per = Peripheral(p, max_length=10)
    local = _bleio.PacketBuffer(per.tx, buffer_size=4)
    connect(p, c)
    assert local.outgoing_packet_length == 10


def test_connection_interval_can_be_set(pair):
    p, c = pair
    _, cconn = connect(p, c)
    cconn.connection_interval = 30
    assert cconn.connection_interval == 30.0


def test_connection_interval_is_cut_to_whole_units(pair):
    p, c = pair
    _, cconn = connect(p, c)
    cconn.connection_interval = 31
    assert cconn.connection_interval == 30.0


def test_connection_interval_out_of_range_raises_value_error(pair):
    p, c = pair
    _, cconn = connect(p, c)
    with pytest.raises(ValueError, match="Invalid BLE parameter"):
        cconn.connection_interval = 5000


def test_peripheral_sees_the_new_connection_interval(pair):
    p, c = pair
    pconn, cconn = connect(p, c)
    cconn.connection_interval = 45
    assert wait_for(lambda: pconn.connection_interval == 45.0)


def test_connection_interval_of_non_number_raises_type_error(pair):
    p, c = pair
    _, cconn = connect(p, c)
    with pytest.raises(TypeError):
        cconn.connection_interval = "fast"


def test_disconnect_ends_the_connection_on_both_sides(pair):
    p, c = pair
    pconn, cconn = connect(p, c)
    cconn.disconnect()
    assert not cconn.connected and wait_for(lambda: not pconn.connected) and c.connections == ()


def test_disconnect_twice_does_nothing(pair):
    p, c = pair
    _, cconn = connect(p, c)
    cconn.disconnect()
    cconn.disconnect()
    assert not cconn.connected


def test_disconnected_connection_raises_connection_error(pair):
    p, c = pair
    _, cconn = connect(p, c)
    cconn.disconnect()
    with pytest.raises(_bleio.ConnectionError, match="disconnected"):
        cconn.discover_remote_services()


def test_remote_read_after_disconnect_raises_connection_error(pair):
    p, c = pair
    Peripheral(p)
    _, cconn = connect(p, c)
    tx = remote(cconn, TX)
    cconn.disconnect()
    with pytest.raises(ConnectionError, match="Not connected"):
        tx.value


def test_encrypted_characteristic_read_unpaired_raises_security_error(pair):
    p, c = pair
    Peripheral(p)
    _, cconn = connect(p, c)
    with pytest.raises(_bleio.SecurityError):
        remote(cconn, SECURE).value


def test_encrypted_characteristic_write_unpaired_raises_security_error(pair):
    p, c = pair
    Peripheral(p)
    _, cconn = connect(p, c)
    with pytest.raises(_bleio.SecurityError):
        remote(cconn, SECURE).value = b"x"


def test_pair_makes_the_connection_paired(pair):
    p, c = pair
    _, cconn = connect(p, c)
    cconn.pair()
    assert cconn.paired


def test_peripheral_sees_the_pairing(pair):
    p, c = pair
    pconn, cconn = connect(p, c)
    cconn.pair()
    assert wait_for(lambda: pconn.paired)


def test_encrypted_characteristic_reads_once_paired(pair):
    p, c = pair
    Peripheral(p)
    _, cconn = connect(p, c)
    cconn.pair()
    assert remote(cconn, SECURE).value == b"secret"


def test_pair_without_bond_is_not_implemented(pair):
    p, c = pair
    _, cconn = connect(p, c)
    with pytest.raises(NotImplementedError, match="bond=False"):
        cconn.pair(bond=False)


def test_no_access_characteristic_read_raises_bluetooth_error(pair):
    p, c = pair
    per = Peripheral(p)
    _bleio.Characteristic.add_to_service(per.service, _bleio.UUID(0x2A3E), properties=_bleio.Characteristic.READ,
                                         read_perm=_bleio.Attribute.NO_ACCESS)
    _, cconn = connect(p, c)
    with pytest.raises(_bleio.BluetoothError):
        remote(cconn, _bleio.UUID(0x2A3E)).value


def test_remote_descriptor_value_reads_the_local_one(pair):
    p, c = pair
    per = Peripheral(p)
    _bleio.Descriptor.add_to_characteristic(per.rx, _bleio.UUID(0x2904), initial_value=b"\x19")
    _, cconn = connect(p, c)
    (dsc,) = remote(cconn, RX).descriptors
    assert (dsc.uuid, dsc.value) == (_bleio.UUID(0x2904), b"\x19")


def test_user_description_is_readable_by_the_peer(pair):
    p, c = pair
    per = Peripheral(p)
    _bleio.Characteristic.add_to_service(per.service, _bleio.UUID(0x2A6E), properties=_bleio.Characteristic.READ,
                                         user_description="temperature")
    _, cconn = connect(p, c)
    (dsc,) = remote(cconn, _bleio.UUID(0x2A6E)).descriptors
    assert (dsc.uuid, dsc.value) == (_bleio.UUID(0x2901), b"temperature")


def test_erase_bonding_forgets_the_peer(pair):
    p, c = pair
    pconn, cconn = connect(p, c)
    cconn.pair()
    wait_for(lambda: pconn.paired)
    store = c.session.secret_store()
    wait_for(lambda: store.get(PEER_SEC, 0, None) is not None)   # the bond is stored
    c.erase_bonding()
    assert store.get(PEER_SEC, 0, None) is None


def test_directed_advertising_lets_the_peer_connect(pair):
    p, c = pair
    p.start_advertising(b"", directed_to=c.address, interval=FAST)
    cconn = c.connect(p.address, timeout=TIMEOUT)
    assert cconn.connected


def test_anonymous_advertisement_comes_from_a_resolvable_private_address(pair):
    p, c = pair
    p.start_advertising(FLAGS + bytes([2, 0xFF, 0x42]), anonymous=True, interval=FAST)
    results = c.start_scan(prefixes=bytes([2, 0xFF, 0x42]), interval=FAST, window=FAST, timeout=TIMEOUT)
    try:
        entry = next(iter(results))
    finally:
        c.stop_scan()
    assert entry.address.type == _bleio.Address.RANDOM_PRIVATE_RESOLVABLE and entry.address != p.address


def test_advertising_timeout_ends_advertising(pair):
    p, _ = pair
    p.start_advertising(FLAGS, interval=FAST, timeout=1)
    assert wait_for(lambda: not p.advertising)


def test_peripheral_disconnect_is_seen_by_the_central(pair):
    p, c = pair
    pconn, cconn = connect(p, c)
    pconn.disconnect()
    assert wait_for(lambda: not cconn.connected)


def test_connection_attribute_is_circuitpython_5s_max_packet_length(pair):
    p, c = pair
    _, cconn = connect(p, c)
    assert cconn.attribute == cconn.max_packet_length


def test_characteristic_buffer_readinto_fills_the_buffer(pair):
    p, c = pair
    per = Peripheral(p)
    buf = _bleio.CharacteristicBuffer(per.rx, timeout=TIMEOUT)
    _, cconn = connect(p, c)
    remote(cconn, RX).value = b"abcd"
    out = bytearray(4)
    assert buf.readinto(out) == 4 and out == b"abcd"


def test_characteristic_buffer_read_without_count_reads_until_quiet(pair):
    p, c = pair
    per = Peripheral(p)
    buf = _bleio.CharacteristicBuffer(per.rx, timeout=1)
    _, cconn = connect(p, c)
    rx = remote(cconn, RX)
    rx.value = b"ab"
    rx.value = b"cd"
    wait_for(lambda: buf.in_waiting == 4)
    assert buf.read() == b"abcd"


def test_remote_descriptor_value_can_be_written(pair):
    p, c = pair
    per = Peripheral(p)
    local = _bleio.Descriptor.add_to_characteristic(per.rx, _bleio.UUID(0x2904), initial_value=b"\x00")
    _, cconn = connect(p, c)
    (dsc,) = remote(cconn, RX).descriptors
    dsc.value = b"\x07"
    assert wait_for(lambda: local.value == b"\x07")


def test_scan_right_after_a_stopped_scan_keeps_scanning(pair):
    p, c = pair
    p.start_advertising(FLAGS, interval=FAST)
    c.start_scan(interval=FAST, window=FAST)
    c.stop_scan()
    assert _scan_for(c, p.address) is not None


def test_scan_with_default_intervals_finds_the_advertisement(pair):
    p, c = pair
    p.start_advertising(FLAGS)
    assert _scan_for(c, p.address, interval=0.1, window=0.1) is not None


def test_connect_after_a_failed_connect_succeeds(pair):
    p, c = pair
    nobody = _bleio.Address(bytes([1, 2, 3, 4, 5, 0xC6]), _bleio.Address.RANDOM_STATIC)
    with pytest.raises(_bleio.BluetoothError):
        c.connect(nobody, timeout=0.5)
    _, cconn = connect(p, c)
    assert cconn.connected


def test_secondary_service_is_not_found_by_discovery(pair):
    p, c = pair
    Peripheral(p)
    with using(p):
        hidden = _bleio.Service(_bleio.UUID(0x1811), secondary=True)
    _bleio.Characteristic.add_to_service(hidden, _bleio.UUID(0x2A47), properties=_bleio.Characteristic.READ)
    _, cconn = connect(p, c)
    uuids = [s.uuid for s in cconn.discover_remote_services()]
    assert SVC in uuids and _bleio.UUID(0x1811) not in uuids


def test_peripheral_can_start_the_pairing(pair):
    p, c = pair
    pconn, cconn = connect(p, c)
    pconn.pair()
    assert pconn.paired and wait_for(lambda: cconn.paired)


def test_reconnecting_to_a_bonded_peer_encrypts_the_link(pair):
    p, c = pair
    _, cconn = connect(p, c)
    cconn.pair()
    cconn.disconnect()
    _, again = connect(p, c)
    assert wait_for(lambda: again.paired)


def test_bonded_peers_pair_again_after_reconnecting(pair):
    p, c = pair
    _, cconn = connect(p, c)
    cconn.pair()
    cconn.disconnect()
    _, again = connect(p, c)
    again.pair()
    assert again.paired


def _kill(board):
    if not hasattr(board.transport, "sim_board"):
        pytest.skip("kills a simulated board's process")
    os.kill(board.transport.sim_board.pid, signal.SIGKILL)


def test_board_lost_while_characteristic_buffer_reads_raises_board_lost(pair, boards):
    p, c = pair
    Peripheral(p)
    _, cconn = connect(p, c)
    tx = remote(cconn, TX)
    tx.set_cccd(notify=True)
    buf = _bleio.CharacteristicBuffer(tx, timeout=TIMEOUT)
    threading.Timer(0.2, _kill, (boards[1],)).start()
    with pytest.raises(BoardLost):
        buf.read(1)


def test_board_lost_while_scanning_raises_board_lost(pair, boards):
    _, c = pair
    results = c.start_scan(prefixes=bytes([1, 0xEE]), interval=FAST, window=FAST)
    threading.Timer(0.2, _kill, (boards[1],)).start()
    with pytest.raises(BoardLost):
        next(results)


def test_board_lost_ends_its_connections(pair, boards):
    p, c = pair
    _, cconn = connect(p, c)
    _kill(boards[1])
    assert wait_for(lambda: not cconn.connected)


def test_discover_whitelisted_service_the_peer_lacks_gives_nothing(pair):
    p, c = pair
    Peripheral(p)
    _, cconn = connect(p, c)
    assert cconn.discover_remote_services([_bleio.UUID(0x1234)]) == ()


def test_discover_a_service_without_characteristics(pair):
    p, c = pair
    with using(p):
        _bleio.Service(_bleio.UUID(0x1815))
    _, cconn = connect(p, c)
    (service,) = cconn.discover_remote_services([_bleio.UUID(0x1815)])
    assert service.characteristics == ()
