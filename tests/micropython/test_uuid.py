"""bluetooth.UUID behaves as in MicroPython's extmod/modbluetooth.c."""
import pytest

from blebridge.micropython import UUID


def test_int_makes_a_16_bit_uuid_printed_in_hex():
    assert repr(UUID(0x2A00)) == "UUID(0x2a00)"
    assert bytes(UUID(0x2A00)) == b"\x00\x2a"


def test_int_above_16_bits_is_a_value_error():
    with pytest.raises(ValueError, match="invalid UUID"):
        UUID(0x10000)


def test_128_bit_string_prints_lowercase_with_dashes():
    u = UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E")
    assert repr(u) == "UUID('6e400001-b5a3-f393-e0a9-e50e24dcca9e')"
    assert str(u) == repr(u)


def test_128_bit_string_is_stored_little_endian():
    assert bytes(UUID("00000000-1111-2222-3333-444444444444"))[0] == 0x44
    assert bytes(UUID("00000000-1111-2222-3333-444444444444"))[-1] == 0x00


def test_4_character_string_is_a_32_bit_uuid_of_its_codes():
    # MicroPython: a str has the buffer protocol, and 2/4/16-byte buffers are raw bytes.
    assert UUID("AB12") == UUID(0x32314241.to_bytes(4, "little"))
    assert repr(UUID("180D")) == "UUID(0x44303831)"


def test_2_character_string_is_a_16_bit_uuid_of_its_codes():
    assert UUID("AB") == UUID(0x4241)


def test_16_character_string_is_a_128_bit_uuid_of_its_codes():
    assert bytes(UUID("0123456789abcdef")) == b"0123456789abcdef"


def test_string_length_counts_utf8_bytes():
    # "\u00e9a" is 2 characters but 3 UTF-8 bytes: parsed as text, and the byte 0xC3 is no digit.
    assert bytes(UUID("\u00e9\u00e9")) == "\u00e9\u00e9".encode()
    with pytest.raises(ValueError, match="invalid char in UUID"):
        UUID("\u00e9a")


def test_8_hex_digit_string_is_too_short_for_a_128_bit_uuid():
    with pytest.raises(ValueError, match="UUID too short"):
        UUID("0000180d")


def test_32_hex_digits_without_dashes_make_a_128_bit_uuid():
    assert UUID("6E400001B5A3F393E0A9E50E24DCCA9E") == UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E")


def test_bytes_of_other_lengths_are_parsed_as_uuid_text():
    assert UUID(b"6E400001-B5A3-F393-E0A9-E50E24DCCA9E") == UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E")


def test_too_long_is_reported_before_a_later_bad_character():
    with pytest.raises(ValueError, match="UUID too long"):
        UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E0G")


@pytest.mark.parametrize("size", [2, 4, 16])
def test_buffers_of_2_4_16_bytes_are_taken_as_little_endian_bytes(size):
    raw = bytes(range(1, size + 1))
    assert bytes(UUID(raw)) == raw
    assert bytes(UUID(bytearray(raw))) == raw
    assert bytes(UUID(memoryview(raw))) == raw


def test_32_bit_uuid_prints_without_dashes():
    assert repr(UUID(b"\x01\x02\x03\x04")) == "UUID(0x04030201)"


def test_uuid_from_another_uuid_is_equal():
    u = UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E")
    assert UUID(u) == u


def test_bad_character_in_string_is_a_value_error():
    with pytest.raises(ValueError, match="invalid char in UUID"):
        UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9G")


def test_short_string_is_a_value_error():
    with pytest.raises(ValueError, match="UUID too short"):
        UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA")


def test_long_string_is_a_value_error():
    with pytest.raises(ValueError, match="UUID too long"):
        UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E00")


def test_non_buffer_is_a_type_error():
    with pytest.raises(TypeError):
        UUID(1.5)


def test_equal_uuids_hash_equal_and_work_as_dict_keys():
    assert hash(UUID(0x2902)) == hash(UUID(b"\x02\x29"))
    assert {UUID(0x2902): 1}[UUID(b"\x02\x29")] == 1


def test_uuids_of_different_sizes_are_never_equal():
    assert UUID(0x180D) != UUID("0000180D-0000-1000-8000-00805F9B34FB")


def test_uuids_of_different_sizes_order_by_size():
    assert UUID(0xFFFF) < UUID("00000000-0000-0000-0000-000000000000")
    assert UUID("00000000-0000-0000-0000-000000000000") > UUID(0xFFFF)


def test_uuids_of_same_size_order_by_little_endian_bytes():
    # 0x0102 is b"\x02\x01", 0x0201 is b"\x01\x02": the lower first byte sorts first.
    assert UUID(0x0201) < UUID(0x0102)
    assert sorted([UUID(0x0102), UUID(0x0201)]) == [UUID(0x0201), UUID(0x0102)]


def test_uuid_never_equals_a_non_uuid():
    assert UUID(0x2902) != 0x2902
    assert UUID(0x2902) != b"\x02\x29"


def test_ordering_against_non_uuid_is_a_type_error():
    with pytest.raises(TypeError):
        UUID(1) < 2  # noqa: B015


def test_uuid_is_immutable():
    with pytest.raises(AttributeError):
        UUID(1)._data = b"\x00\x00"
