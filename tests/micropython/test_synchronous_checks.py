"""The checks MicroPython's NimBLE binding and NimBLE make at the call, made by bluetooth.BLE.

The rows of docs/micropython.md "Synchronous checks", one behaviour per test: what is raised
(or sent), and that nothing reaches the board for a call MicroPython refuses at once.
"""
import errno

import pytest

from blebridge import protocol as P
from blebridge.micropython import BLE, UUID
from blebridge.micropython.ble import (ERRNO_ADV_DATA_TOO_LONG, ERRNO_BLE_HS_EAPP,
                                       ERRNO_HCI_INVALID_PARAMS)

CFG = P.CONSTANTS["config"]
ADDR = bytes(6)


def raises(errno_, fn, *args, **kwargs):
    with pytest.raises(OSError) as info:
        fn(*args, **kwargs)
    assert info.value.errno == errno_, info.value
    assert info.value.args[0] == errno_
    return info.value


@pytest.fixture
def radio_off(board, tmp_path, monkeypatch):
    """A BLE object whose board's radio is off (and not known to the object)."""
    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(tmp_path / "secrets"))
    obj = BLE(board)
    board.active = False
    yield obj
    obj.close()


def registered(ble, board, handles=(11, 14)):
    """Register one service whose characteristics get ``handles`` on the fake board."""
    board.results["gatts_register_services"] = [[10, [[h - 1, h, None, []] for h in handles]]]
    chars = tuple((UUID(0x2A00 + i), 2) for i in range(len(handles)))
    return ble.gatts_register_services(((UUID(0x180F), chars),))


# -- the radio check comes first --------------------------------------------------------------

def test_refused_argument_with_radio_off_raises_enodev(radio_off):
    raises(errno.ENODEV, radio_off.gattc_read, 0, 0)


def test_refused_argument_with_radio_on_does_not_ask_the_board_for_its_state(ble, board):
    ble.active(True)
    board.calls.clear()
    raises(errno.EINVAL, ble.gattc_read, 0, 0)
    assert board.calls == []


def test_refused_argument_with_radio_state_unknown_asks_the_board_once(ble, board):
    raises(errno.EINVAL, ble.gattc_read, 0, 0)
    raises(errno.EINVAL, ble.gattc_read, 0, 0)
    assert board.calls == [("ble_active", None)]


# -- GATT client ------------------------------------------------------------------------------

def test_gattc_read_of_handle_0_raises_einval_without_a_request(ble, board):
    raises(errno.EINVAL, ble.gattc_read, 0, 0)
    assert "gattc_read" not in board.methods()


def test_gattc_read_of_handle_0_on_unknown_connection_raises_einval(ble, board):
    board.fail("gattc_read", "UNKNOWN_HANDLE")
    raises(errno.EINVAL, ble.gattc_read, 77, 0)


def test_gattc_handles_are_c_uint16(ble, board):
    raises(errno.EINVAL, ble.gattc_read, 0, 0x10000)
    ble.gattc_read(0x10001, -1)
    assert board.calls[-1] == ("gattc_read", 1, 0xFFFF)


def test_gattc_write_to_handle_0_is_sent(ble, board):
    ble.gattc_write(0, 0, b"x", 1)
    assert board.calls[-1] == ("gattc_write", 0, 0, b"x", 1)


def test_gattc_write_longer_than_an_attribute_is_cut(ble, board):
    ble.gattc_write(0, 3, bytes(600))
    assert board.calls[-1] == ("gattc_write", 0, 3, bytes(512), 0)


def test_gattc_write_negative_mode_raises_einval(ble, board):
    raises(errno.EINVAL, ble.gattc_write, 0, 3, b"x", -1)
    assert "gattc_write" not in board.methods()


def test_discover_characteristics_from_handle_0_raises_einval(ble, board):
    raises(errno.EINVAL, ble.gattc_discover_characteristics, 0, 0, 0xFFFF)
    assert "gattc_discover_characteristics" not in board.methods()


def test_discover_characteristics_with_start_after_end_raises_einval(ble, board):
    raises(errno.EINVAL, ble.gattc_discover_characteristics, 0, 9, 8)


def test_discover_characteristics_of_one_handle_is_sent(ble, board):
    ble.gattc_discover_characteristics(0, 8, 8)
    assert board.calls[-1] == ("gattc_discover_characteristics", 0, 8, 8, None)


def test_characteristic_discovery_on_another_connection_raises_ebusy(ble, board):
    ble.gattc_discover_characteristics(0, 1, 0xFFFF)
    raises(errno.EBUSY, ble.gattc_discover_characteristics, 1, 1, 0xFFFF)


def test_characteristic_discovery_done_allows_the_next(ble, board):
    ble.gattc_discover_characteristics(0, 1, 0xFFFF)
    board.emit("GATTC_CHARACTERISTIC_DONE", 0, 0)
    ble.gattc_discover_characteristics(1, 1, 0xFFFF)
    assert board.calls[-1] == ("gattc_discover_characteristics", 1, 1, 0xFFFF, None)


def test_disconnect_ends_the_characteristic_discovery(ble, board):
    ble.gattc_discover_characteristics(0, 1, 0xFFFF)
    board.emit("PERIPHERAL_DISCONNECT", 0, 0, ADDR, 0x13)
    ble.gattc_discover_characteristics(1, 1, 0xFFFF)
    assert board.calls[-1][:2] == ("gattc_discover_characteristics", 1)


def test_refused_characteristic_discovery_allows_the_next(ble, board):
    board.fail("gattc_discover_characteristics", "UNKNOWN_HANDLE")
    raises(errno.ENOTCONN, ble.gattc_discover_characteristics, 0, 1, 0xFFFF)
    raises(errno.ENOTCONN, ble.gattc_discover_characteristics, 1, 1, 0xFFFF)


def test_discover_descriptors_with_nothing_after_start_raises_einval(ble, board):
    raises(errno.EINVAL, ble.gattc_discover_descriptors, 0, 14, 14)
    assert "gattc_discover_descriptors" not in board.methods()


def test_discover_descriptors_from_handle_0xffff_raises_einval(ble, board):
    raises(errno.EINVAL, ble.gattc_discover_descriptors, 0, 0xFFFF, 0xFFFF)


# -- GATT server ------------------------------------------------------------------------------

def test_notify_handle_0_with_data_raises_einval(ble, board):
    raises(errno.EINVAL, ble.gatts_notify, 0, 0, b"x")
    assert "gatts_notify" not in board.methods()


def test_notify_handle_0_without_data_raises_ble_hs_eapp(ble, board):
    raises(ERRNO_BLE_HS_EAPP, ble.gatts_notify, 0, 0)


def test_indicate_handle_0_with_data_raises_einval(ble, board):
    raises(errno.EINVAL, ble.gatts_indicate, 0, 0, b"x")


def test_notify_unregistered_handle_without_data_raises_ble_hs_eapp(ble, board):
    registered(ble, board)
    board.fail("gatts_notify", "UNKNOWN_HANDLE")
    raises(ERRNO_BLE_HS_EAPP, ble.gatts_notify, 0, 99)


def test_register_services_with_radio_off_raises_enodev_before_reading_them(radio_off):
    raises(errno.ENODEV, radio_off.gatts_register_services, ((b"not a uuid", ()),))


def test_register_nine_services_raises_e2big(ble, board):
    services = tuple((UUID(0x1800 + i), ()) for i in range(9))
    raises(errno.E2BIG, ble.gatts_register_services, services)
    assert "gatts_register_services" not in board.methods()


def test_set_buffer_of_negative_length_raises_enomem(ble, board):
    ((handle, _),) = registered(ble, board)
    raises(errno.ENOMEM, ble.gatts_set_buffer, handle, -1)


def test_set_buffer_of_negative_length_on_unknown_handle_raises_einval(ble, board):
    raises(errno.EINVAL, ble.gatts_set_buffer, 99, -1)


# -- GAP --------------------------------------------------------------------------------------

def test_advertising_data_over_31_bytes_raises_minus_18(ble, board):
    raises(ERRNO_ADV_DATA_TOO_LONG, ble.gap_advertise, 100_000, bytes(32))
    assert "gap_advertise_start" not in board.methods()


def test_advertising_data_over_31_bytes_with_radio_off_raises_enodev(radio_off):
    raises(errno.ENODEV, radio_off.gap_advertise, 100_000, bytes(32))


def test_refused_advertising_data_is_not_kept(ble, board):
    ble.gap_advertise(100_000, b"\x02\x01\x06")
    raises(ERRNO_ADV_DATA_TOO_LONG, ble.gap_advertise, 100_000, bytes(32))
    ble.gap_advertise(100_000)
    assert board.calls[-1][2] == b"\x02\x01\x06"


def test_response_data_over_31_bytes_raises_einval(ble, board):
    raises(errno.EINVAL, ble.gap_advertise, 100_000, b"", resp_data=bytes(32))


def test_advertising_interval_under_20_ms_raises_hci_invalid_parameters(ble, board):
    raises(ERRNO_HCI_INVALID_PARAMS, ble.gap_advertise, 19_999)


def test_advertising_interval_over_10_24_s_raises_hci_invalid_parameters(ble, board):
    raises(ERRNO_HCI_INVALID_PARAMS, ble.gap_advertise, 10_240_625)


def test_negative_advertising_interval_raises_hci_invalid_parameters(ble, board):
    raises(ERRNO_HCI_INVALID_PARAMS, ble.gap_advertise, -625)


def test_advertising_interval_under_625_us_is_nimble_default(ble, board):
    ble.gap_advertise(600)
    assert board.calls[-1][1] == 30_000


def test_advertising_interval_is_rounded_down_to_625_us(ble, board):
    ble.gap_advertise(100_624)
    assert board.calls[-1][1] == 100_000


def test_scan_window_longer_than_interval_raises_einval(ble, board):
    raises(errno.EINVAL, ble.gap_scan, 1000, 30_000, 60_000)
    assert "gap_scan_start" not in board.methods()


def test_scan_interval_and_window_are_clamped_to_hci_range(ble, board):
    ble.gap_scan(1000, 20_000_000, 1)
    assert board.calls[-1] == ("gap_scan_start", 1000, 0x4000 * 625, 4 * 625, False, False)


def test_negative_scan_duration_is_a_c_uint32(ble, board):
    ble.gap_scan(-1)
    assert board.calls[-1][1] == 0xFFFFFFFF


def test_connect_address_type_4_raises_einval(ble, board):
    raises(errno.EINVAL, ble.gap_connect, 4, ADDR)
    assert "gap_connect" not in board.methods()


def test_connect_min_interval_over_the_default_max_raises_hci_invalid_parameters(ble, board):
    raises(ERRNO_HCI_INVALID_PARAMS, ble.gap_connect, 0, ADDR, 2000, 100_000)


def test_connect_interval_under_7_5_ms_raises_hci_invalid_parameters(ble, board):
    raises(ERRNO_HCI_INVALID_PARAMS, ble.gap_connect, 0, ADDR, 2000, 5000, 5000)


def test_connect_interval_is_rounded_down_to_1250_us(ble, board):
    ble.gap_connect(0, ADDR, 2000, 30_001, 50_000)
    assert board.calls[-1][4:] == (30_000, 50_000)


def test_pair_with_radio_off_raises_enotconn(ble, board):
    board.fail("gap_pair", "NOT_ACTIVE")
    raises(errno.ENOTCONN, ble.gap_pair, 0)


def test_passkey_with_radio_off_raises_enoent(ble, board):
    board.fail("gap_passkey", "NOT_ACTIVE")
    raises(errno.ENOENT, ble.gap_passkey, 0, 2, 123456)


def test_passkey_on_unknown_connection_raises_enoent(ble, board):
    board.fail("gap_passkey", "UNKNOWN_HANDLE")
    raises(errno.ENOENT, ble.gap_passkey, 9, 2, 123456)


def test_passkey_action_is_a_c_uint8(ble, board):
    ble.gap_passkey(0, 0x102, 123456)
    assert board.calls[-1] == ("gap_passkey", 0, 2, 123456)


def test_exchange_mtu_with_radio_off_raises_enotconn(ble, board):
    board.fail("gattc_exchange_mtu", "NOT_ACTIVE")
    raises(errno.ENOTCONN, ble.gattc_exchange_mtu, 0)


# -- config -----------------------------------------------------------------------------------

def test_config_mtu_under_23_raises_einval(ble, board):
    raises(errno.EINVAL, ble.config, mtu=22)
    assert "config_set" not in board.methods()


def test_config_mtu_over_527_raises_einval(ble, board):
    raises(errno.EINVAL, ble.config, mtu=528)


def test_config_mtu_with_radio_off_raises_enodev_before_its_range(radio_off):
    raises(errno.ENODEV, radio_off.config, mtu=22)


def test_config_mtu_over_the_board_limit_is_the_board_limit(ble, board):
    ble.config(mtu=527)
    assert board.calls[-1] == ("config_set", CFG["MTU"], 515)


def test_config_gap_name_over_31_bytes_raises_einval_even_with_radio_off(radio_off):
    raises(errno.EINVAL, radio_off.config, gap_name=bytes(32))


def test_config_addr_mode_4_changes_nothing(ble, board):
    ble.active(True)
    board.calls.clear()
    ble.config(addr_mode=4)
    assert board.calls == []


def test_config_addr_mode_4_with_radio_off_raises_enodev(radio_off):
    raises(errno.ENODEV, radio_off.config, addr_mode=4)


# -- L2CAP ------------------------------------------------------------------------------------

def test_l2cap_listen_twice_raises_ealready(ble, board):
    ble.l2cap_listen(0x80, 256)
    raises(errno.EALREADY, ble.l2cap_listen, 0x81, 256)


def test_l2cap_connect_while_listening_raises_ealready(ble, board):
    ble.l2cap_listen(0x80, 256)
    raises(errno.EALREADY, ble.l2cap_connect, 0, 0x80, 256)
    assert "l2cap_connect" not in board.methods()


def test_l2cap_connect_while_a_channel_is_open_raises_ealready(ble, board):
    board.emit("L2CAP_CONNECT", 0, 0x40, 0x80, 256, 256)
    raises(errno.EALREADY, ble.l2cap_connect, 0, 0x80, 256)


def test_l2cap_connect_after_the_channel_closed_is_sent(ble, board):
    board.emit("L2CAP_CONNECT", 0, 0x40, 0x80, 256, 256)
    board.emit("L2CAP_DISCONNECT", 0, 0x40, 0x80, 0)
    ble.l2cap_connect(0, 0x80, 256)
    assert board.calls[-1] == ("l2cap_connect", 0, 0x80, 256)


def test_l2cap_listen_again_after_radio_off_is_sent(ble, board):
    ble.l2cap_listen(0x80, 256)
    ble.active(False)
    ble.active(True)
    ble.l2cap_listen(0x80, 256)
    assert board.calls[-1] == ("l2cap_listen", 0x80, 256)


def test_l2cap_send_over_twice_our_mtu_raises_einval(ble, board):
    board.emit("L2CAP_CONNECT", 0, 0x40, 0x80, 100, 1024)
    raises(errno.EINVAL, ble.l2cap_send, 0, 0x40, bytes(201))
    assert "l2cap_send" not in board.methods()


# -- GAP procedures and connections (NimBLE's state, as this host saw it) ----------------------

def test_register_services_while_advertising_raises_ebusy(ble, board):
    ble.gap_advertise(100_000)
    raises(errno.EBUSY, ble.gatts_register_services, ())
    assert "gatts_register_services" not in board.methods()


def test_register_services_after_advertising_stopped_is_sent(ble, board):
    ble.gap_advertise(100_000)
    ble.gap_advertise(None)
    board.results["gatts_register_services"] = []
    ble.gatts_register_services(())
    assert board.calls[-1] == ("gatts_register_services", [])


def test_register_services_after_advertising_ended_by_a_connection_and_disconnect_is_sent(ble, board):
    ble.gap_advertise(100_000)
    board.emit("CENTRAL_CONNECT", 0, 0, ADDR)
    board.emit("ADVERTISE_DONE", 1)
    board.emit("CENTRAL_DISCONNECT", 0, 0, ADDR, 0x13)
    board.results["gatts_register_services"] = []
    ble.gatts_register_services(())
    assert board.calls[-1] == ("gatts_register_services", [])


def test_register_services_while_connected_raises_ebusy(ble, board):
    board.emit("CENTRAL_CONNECT", 0, 0, ADDR)
    raises(errno.EBUSY, ble.gatts_register_services, ())


def test_register_services_while_connecting_raises_ebusy(ble, board):
    ble.gap_connect(0, ADDR)
    raises(errno.EBUSY, ble.gatts_register_services, ())


def test_register_services_while_scanning_raises_ebusy(ble, board):
    ble.gap_scan(0)
    raises(errno.EBUSY, ble.gatts_register_services, ())


def test_register_services_busy_comes_before_reading_the_definition(ble, board):
    ble.gap_scan(0)
    raises(errno.EBUSY, ble.gatts_register_services, ((b"not a uuid", ()),))


def test_scan_while_scanning_raises_ealready(ble, board):
    ble.gap_scan(0)
    raises(errno.EALREADY, ble.gap_scan, 0)


def test_scan_after_scan_done_is_sent(ble, board):
    ble.gap_scan(10)
    board.emit("SCAN_DONE")
    ble.gap_scan(10)
    assert board.methods().count("gap_scan_start") == 2


def test_scan_while_connecting_raises_ebusy(ble, board):
    ble.gap_connect(0, ADDR)
    raises(errno.EBUSY, ble.gap_scan, 0)


def test_connect_while_connecting_raises_ealready(ble, board):
    ble.gap_connect(0, ADDR)
    raises(errno.EALREADY, ble.gap_connect, 0, ADDR)


def test_connect_after_a_failed_connect_is_sent(ble, board):
    ble.gap_connect(0, ADDR)
    board.emit("PERIPHERAL_DISCONNECT", 0xFFFF, 0, ADDR, 0x3E)
    ble.gap_connect(0, ADDR)
    assert board.methods().count("gap_connect") == 2


def test_connect_to_a_connected_peer_raises_eio(ble, board):
    board.emit("PERIPHERAL_CONNECT", 0, 0, bytes([1, 2, 3, 4, 5, 6]))
    raises(errno.EIO, ble.gap_connect, 0, bytes([6, 5, 4, 3, 2, 1]))


def test_connect_while_scanning_stops_the_scan_first(ble, board):
    ble.gap_scan(0)
    ble.gap_connect(0, ADDR)
    assert board.methods()[-2:] == ["gap_scan_stop", "gap_connect"]


def test_config_mtu_get_with_radio_off_raises_enodev(radio_off, board):
    board.results["config_get"] = 256
    raises(errno.ENODEV, radio_off.config, "mtu")


def test_local_write_over_512_bytes_with_radio_off_raises_enodev(radio_off):
    raises(errno.ENODEV, radio_off.gatts_write, 1, bytes(513))


def test_local_write_over_512_bytes_to_unknown_handle_raises_einval(ble, board):
    registered(ble, board)
    raises(errno.EINVAL, ble.gatts_write, 99, bytes(513))
