"""_bleio.Adapter on one simulated board: state, advertising and scanning arguments."""
import pytest

from blebridge.circuitpython import _bleio
from bleio_helpers import FAST, FLAGS

pytestmark = pytest.mark.boards(1)


def test_default_name_is_circuitpy_and_last_four_address_digits(adapter):
    b = adapter.address.address_bytes
    assert adapter.name == f"CIRCUITPY{b[1]:02x}{b[0]:02x}"


def test_name_can_be_set(adapter):
    adapter.name = "bleio-test"
    assert adapter.name == "bleio-test"


def test_name_of_non_str_raises_type_error(adapter):
    with pytest.raises(TypeError):
        adapter.name = 42


def test_name_can_be_set_from_bytes(adapter):
    adapter.name = b"bytes-name"
    assert adapter.name == "bytes-name"


def test_adapter_is_enabled_after_opening(adapter):
    assert adapter.enabled


def test_disabling_turns_the_radio_off(adapter):
    adapter.enabled = False
    assert not adapter.enabled


def test_address_is_an_address(adapter):
    assert isinstance(adapter.address, _bleio.Address) and len(adapter.address.address_bytes) == 6


def test_not_connected_without_connections(adapter):
    assert (adapter.connected, adapter.connections) == (False, ())


def test_start_advertising_sets_advertising(adapter):
    adapter.start_advertising(FLAGS, interval=FAST)
    assert adapter.advertising


def test_stop_advertising_clears_advertising(adapter):
    adapter.start_advertising(FLAGS, interval=FAST)
    adapter.stop_advertising()
    assert not adapter.advertising


def test_stop_advertising_when_not_advertising_does_nothing(adapter):
    adapter.stop_advertising()
    assert not adapter.advertising


def test_advertising_twice_raises_bluetooth_error(adapter):
    adapter.start_advertising(FLAGS, interval=FAST)
    with pytest.raises(_bleio.BluetoothError, match="Already advertising"):
        adapter.start_advertising(FLAGS, interval=FAST)


def test_advertising_interval_out_of_range_raises_value_error(adapter):
    with pytest.raises(ValueError, match="interval must be in range 0.02-10.24"):
        adapter.start_advertising(FLAGS, interval=0.01)


def test_advertising_interval_of_wrong_type_raises_type_error(adapter):
    with pytest.raises(TypeError, match="interval"):
        adapter.start_advertising(FLAGS, interval="fast")


def test_advertising_negative_timeout_raises_value_error(adapter):
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        adapter.start_advertising(FLAGS, timeout=-1)


def test_advertising_timeout_over_180_s_raises_bluetooth_error(adapter):
    with pytest.raises(_bleio.BluetoothError, match="Maximum timeout length is 180 seconds"):
        adapter.start_advertising(FLAGS, timeout=181)


def test_advertising_data_of_non_buffer_raises_type_error(adapter):
    with pytest.raises(TypeError):
        adapter.start_advertising(6)


def test_advertising_data_over_extended_limit_raises_value_error(adapter):
    with pytest.raises(ValueError, match="Data too large"):
        adapter.start_advertising(bytes(300))


def test_extended_connectable_with_scan_response_raises_bluetooth_error(adapter):
    with pytest.raises(_bleio.BluetoothError, match="scan responses for extended"):
        adapter.start_advertising(bytes(40), scan_response=FLAGS)


def test_directed_non_connectable_raises_bluetooth_error(adapter):
    with pytest.raises(_bleio.BluetoothError, match="Only connectable"):
        adapter.start_advertising(b"", connectable=False, directed_to=_bleio.Address(bytes(6)))


def test_directed_to_non_address_raises_type_error(adapter):
    with pytest.raises(TypeError, match="directed_to"):
        adapter.start_advertising(b"", directed_to=b"\x00" * 6)


def test_directed_with_data_raises_bluetooth_error(adapter):
    with pytest.raises(_bleio.BluetoothError, match="Data not supported with directed"):
        adapter.start_advertising(FLAGS, directed_to=_bleio.Address(bytes(6)))


def test_extended_advertising_starts_on_a_board_that_has_it(adapter):
    adapter.start_advertising(FLAGS + bytes([40, 0xFF]) + bytes(39), interval=FAST)
    assert adapter.advertising


def test_extended_advertising_on_a_board_without_it_raises_bluetooth_error(adapter, monkeypatch):
    monkeypatch.setitem(adapter.board.info.caps, "ext_adv", False)
    with pytest.raises(_bleio.BluetoothError, match="ext_adv is false"):
        adapter.start_advertising(bytes(40))


def test_scan_interval_out_of_range_raises_value_error(adapter):
    with pytest.raises(ValueError, match="interval must be in range 0.0025-40.959375"):
        adapter.start_scan(interval=0.001)


def test_scan_window_over_interval_raises_value_error(adapter):
    with pytest.raises(ValueError, match="window must be <= interval"):
        adapter.start_scan(interval=0.1, window=0.2)


def test_scan_timeout_under_interval_raises_value_error(adapter):
    with pytest.raises(ValueError, match="non-zero timeout must be >= interval"):
        adapter.start_scan(timeout=0.05, interval=0.1)


def test_scan_negative_timeout_raises_value_error(adapter):
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        adapter.start_scan(timeout=-1)


def test_scan_buffer_size_zero_raises_value_error(adapter):
    with pytest.raises(ValueError, match="buffer_size must be >= 1"):
        adapter.start_scan(buffer_size=0)


def test_scan_prefixes_of_non_buffer_raises_type_error(adapter):
    with pytest.raises(TypeError):
        adapter.start_scan(prefixes=3)


def test_scan_while_scanning_raises_bluetooth_error(adapter):
    adapter.start_scan(interval=FAST, window=FAST)
    with pytest.raises(_bleio.BluetoothError, match="Scan already in progress"):
        adapter.start_scan(interval=FAST, window=FAST)


def test_stop_scan_ends_the_iterator(adapter):
    results = adapter.start_scan(prefixes=bytes([1, 0xEE]), interval=FAST, window=FAST)
    adapter.stop_scan()
    assert list(results) == []


def test_scan_ends_at_its_timeout(adapter):
    results = adapter.start_scan(prefixes=bytes([1, 0xEE]), timeout=0.2, interval=FAST, window=FAST)
    assert list(results) == []


def test_connect_to_non_address_raises_type_error(adapter):
    with pytest.raises(TypeError, match="address"):
        adapter.connect(b"\x00" * 6, timeout=1)


def test_connect_needs_a_timeout(adapter):
    with pytest.raises(TypeError):
        adapter.connect(_bleio.Address(bytes(6)))


def test_connect_to_nobody_raises_bluetooth_error_at_timeout(adapter):
    with pytest.raises(_bleio.BluetoothError, match="Failed to connect: timeout"):
        adapter.connect(_bleio.Address(bytes([1, 2, 3, 4, 5, 0xC6]), _bleio.Address.RANDOM_STATIC), timeout=0.5)


def test_erase_bonding_without_bonds_succeeds(adapter):
    adapter.erase_bonding()
    assert adapter.enabled


def test_address_can_be_set_to_a_static_random_address(adapter):
    new = _bleio.Address(bytes([1, 2, 3, 4, 5, 0xC7]), _bleio.Address.RANDOM_STATIC)
    adapter.address = new
    assert adapter.address == new


def test_address_of_non_address_raises_type_error(adapter):
    with pytest.raises(TypeError, match="Address"):
        adapter.address = bytes(6)
