"""_bleio.UUID, _bleio.Address, ScanEntry matching and the module's constants: no board needed."""
import builtins

import pytest

from blebridge.circuitpython import _bleio
from blebridge.circuitpython._bleio.scan_entry import data_matches

UART = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"


def test_uuid_from_int_is_16_bit():
    u = _bleio.UUID(0x180D)
    assert (u.size, u.uuid16) == (16, 0x180D)


def test_uuid_from_str_is_128_bit_little_endian():
    u = _bleio.UUID(UART)
    assert u.size == 128 and u.uuid128 == bytes.fromhex(UART.replace("-", ""))[::-1]


def test_uuid_from_16_bytes_is_128_bit():
    assert _bleio.UUID(bytes(range(16))).uuid128 == bytes(range(16))


def test_uuid_uuid16_of_128_bit_is_bytes_12_and_13():
    assert _bleio.UUID(UART).uuid16 == 0x0001


def test_uuid_copy_equals_original():
    u = _bleio.UUID(UART)
    assert _bleio.UUID(u) == u


def test_uuid_int_out_of_range_raises_value_error():
    with pytest.raises(ValueError, match="0-65535"):
        _bleio.UUID(0x10000)


def test_uuid_bad_str_raises_value_error():
    with pytest.raises(ValueError, match="xxxxxxxx-xxxx"):
        _bleio.UUID("180d")


def test_uuid_wrong_buffer_length_raises_value_error():
    with pytest.raises(ValueError, match="length must be 16"):
        _bleio.UUID(bytes(15))


def test_uuid_of_float_raises_value_error():
    with pytest.raises(ValueError, match="not str, int or byte buffer"):
        _bleio.UUID(1.5)


def test_uuid_uuid128_of_16_bit_raises_attribute_error():
    with pytest.raises(AttributeError, match="not a 128-bit UUID"):
        _bleio.UUID(0x180D).uuid128


def test_uuid_16_bit_differs_from_its_128_bit_form():
    assert _bleio.UUID(0x180D) != _bleio.UUID("0000180d-0000-1000-8000-00805f9b34fb")


def test_uuid_equal_uuids_hash_equal():
    assert hash(_bleio.UUID(UART)) == hash(_bleio.UUID(UART))


def test_uuid_repr_is_circuitpythons():
    assert (repr(_bleio.UUID(0x180D)), repr(_bleio.UUID(UART))) == ("UUID(0x180d)", f"UUID('{UART}')")


def test_uuid_pack_into_writes_at_offset():
    buf = bytearray(4)
    _bleio.UUID(0x180D).pack_into(buf, offset=1)
    assert buf == b"\x00\x0d\x18\x00"


def test_uuid_pack_into_short_buffer_raises_value_error():
    with pytest.raises(ValueError, match="buffer length"):
        _bleio.UUID(UART).pack_into(bytearray(15))


def test_address_bytes_are_little_endian():
    a = _bleio.Address(bytes([1, 2, 3, 4, 5, 6]), _bleio.Address.RANDOM_STATIC)
    assert (a.address_bytes, a.type, repr(a)) == (bytes([1, 2, 3, 4, 5, 6]), 1, "<Address 06:05:04:03:02:01>")


def test_address_default_type_is_public():
    assert _bleio.Address(bytes(6)).type == _bleio.Address.PUBLIC


def test_address_wrong_length_raises_value_error():
    with pytest.raises(ValueError, match="length must be 6"):
        _bleio.Address(bytes(5))


def test_address_type_out_of_range_raises_value_error():
    with pytest.raises(ValueError, match="address_type must be 0-3"):
        _bleio.Address(bytes(6), 4)


def test_address_of_non_buffer_raises_type_error():
    with pytest.raises(TypeError):
        _bleio.Address(0x112233445566)


def test_address_equality_needs_bytes_and_type():
    assert _bleio.Address(bytes(6), 0) != _bleio.Address(bytes(6), 1)
    assert hash(_bleio.Address(bytes(6), 1)) == hash(_bleio.Address(bytes(6), 1))


def test_address_type_constants_are_circuitpythons():
    A = _bleio.Address
    assert (A.PUBLIC, A.RANDOM_STATIC, A.RANDOM_PRIVATE_RESOLVABLE, A.RANDOM_PRIVATE_NON_RESOLVABLE) == (0, 1, 2, 3)


def test_attribute_constants_are_circuitpythons():
    A = _bleio.Attribute
    assert (A.NO_ACCESS, A.OPEN, A.ENCRYPT_NO_MITM, A.ENCRYPT_WITH_MITM, A.LESC_ENCRYPT_WITH_MITM,
            A.SIGNED_NO_MITM, A.SIGNED_WITH_MITM) == (0x00, 0x11, 0x21, 0x31, 0x41, 0x12, 0x22)


def test_characteristic_property_flags_are_circuitpythons():
    C = _bleio.Characteristic
    assert (C.BROADCAST, C.INDICATE, C.NOTIFY, C.READ, C.WRITE, C.WRITE_NO_RESPONSE) == (1, 2, 4, 8, 16, 32)


def test_exceptions_derive_from_bluetooth_error():
    for exc in (_bleio.RoleError, _bleio.SecurityError, _bleio.ConnectionError):
        assert issubclass(exc, _bleio.BluetoothError)


def test_connection_error_is_also_the_builtin():
    assert issubclass(_bleio.ConnectionError, builtins.ConnectionError)


def test_adapter_cannot_be_constructed():
    with pytest.raises(NotImplementedError, match="use _bleio.adapter"):
        _bleio.Adapter()


def test_attribute_cannot_be_constructed():
    with pytest.raises(TypeError):
        _bleio.Attribute()


def test_connection_cannot_be_constructed():
    with pytest.raises(TypeError):
        _bleio.Connection()


def test_set_adapter_of_non_adapter_raises_type_error():
    with pytest.raises(TypeError, match="Adapter"):
        _bleio.set_adapter(42)


# An advertisement: flags, then complete list of 16-bit service UUIDs 0x180d.
ADV = bytes([2, 0x01, 0x06, 3, 0x03, 0x0D, 0x18])


def test_prefixes_match_any_structure_start():
    assert data_matches(ADV, bytes([2, 0x03, 0x0D]), any_=True)


def test_prefixes_not_in_data_do_not_match():
    assert not data_matches(ADV, bytes([2, 0x03, 0x0F]), any_=True)


def test_no_prefixes_match_everything():
    assert data_matches(ADV, b"", any_=True)


def test_match_all_needs_every_prefix():
    prefixes = bytes([2, 0x03, 0x0D, 1, 0xFF])
    assert data_matches(ADV, prefixes, any_=True) and not data_matches(ADV, prefixes, any_=False)


def _entry(data):
    return _bleio.ScanEntry._of(_bleio.Address(bytes(6)), data, -40, True, False)


def test_scan_entry_matches_match_all_keyword():
    assert _entry(ADV).matches(bytes([1, 0x01, 1, 0x03]), match_all=True)


def test_scan_entry_matches_accepts_circuitpython_5_all_keyword():
    assert not _entry(ADV).matches(bytes([1, 0x01, 1, 0xFF]), all=True)


def test_scan_entry_cannot_be_constructed():
    with pytest.raises(TypeError):
        _bleio.ScanEntry()
