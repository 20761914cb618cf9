"""The API-neutral UUID value (blebridge.ble.uuid)."""
import pytest

from blebridge.ble.uuid import UUID

NUS = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"


def test_small_int_makes_a_16_bit_uuid():
    assert UUID(0x180D).size == 16


def test_int_above_16_bits_makes_a_32_bit_uuid():
    assert UUID(0x1_0000).size == 32


def test_int_above_32_bits_makes_a_128_bit_uuid():
    assert UUID(1 << 32).size == 128


def test_from_int_takes_the_size_asked_for():
    assert UUID.from_int(0x180D, 128).bytes_le == (0x180D).to_bytes(16, "little")


def test_int_that_does_not_fit_its_size_is_a_value_error():
    with pytest.raises(ValueError, match="does not fit 16 bits"):
        UUID.from_int(0x1_0000, 16)


def test_negative_int_is_a_value_error():
    with pytest.raises(ValueError):
        UUID(-1)


def test_bool_is_a_type_error():
    with pytest.raises(TypeError):
        UUID(True)


def test_bytes_are_taken_little_endian():
    assert UUID(b"\x0d\x18") == UUID(0x180D)


@pytest.mark.parametrize("size", [2, 4, 16])
def test_bytes_le_gives_back_the_bytes_it_was_made_from(size):
    raw = bytes(range(1, size + 1))
    assert UUID(bytearray(raw)).bytes_le == raw and bytes(UUID(memoryview(raw))) == raw


def test_bytes_of_another_length_are_a_value_error():
    with pytest.raises(ValueError, match="2, 4 or 16 bytes, not 3"):
        UUID(b"\x01\x02\x03")


def test_non_buffer_is_a_type_error():
    with pytest.raises(TypeError):
        UUID(1.5)


def test_canonical_128_bit_text_round_trips():
    assert str(UUID(NUS.upper())) == NUS


def test_128_bit_text_without_dashes_is_accepted():
    assert UUID(NUS.replace("-", "")) == UUID(NUS)


def test_128_bit_text_is_stored_little_endian():
    assert UUID(NUS).bytes_le == bytes.fromhex(NUS.replace("-", ""))[::-1]


def test_four_hex_digits_make_a_16_bit_uuid():
    assert UUID("0x180D") == UUID(0x180D) and UUID("180d").size == 16


def test_eight_hex_digits_make_a_32_bit_uuid():
    assert UUID("0000180d").size == 32


def test_short_uuid_prints_its_hex_digits():
    assert str(UUID(0x2A00)) == "2a00"


def test_misplaced_dashes_are_a_value_error():
    with pytest.raises(ValueError, match="not a UUID"):
        UUID("6e400001b-5a3-f393-e0a9-e50e24dcca9e")


def test_bad_hex_digit_is_a_value_error():
    with pytest.raises(ValueError, match="hex digits expected"):
        UUID(NUS[:-1] + "g")


def test_expanded_puts_a_short_uuid_on_the_base_uuid():
    assert str(UUID(0x180D).expanded()) == "0000180d-0000-1000-8000-00805f9b34fb"


def test_expanded_128_bit_uuid_is_itself():
    assert UUID(NUS).expanded() == UUID(NUS)


def test_shortened_takes_a_base_uuid_back_to_16_bits():
    assert UUID("0000180d-0000-1000-8000-00805f9b34fb").shortened() == UUID(0x180D)


def test_shortened_vendor_uuid_is_itself():
    assert UUID(NUS).shortened() == UUID(NUS)


def test_uuids_of_different_sizes_are_not_equal():
    assert UUID(0x180D) != UUID(0x180D).expanded()


def test_equal_uuids_hash_equal():
    assert {UUID(0x2902): 1}[UUID(b"\x02\x29")] == 1


def test_uuid_never_equals_a_non_uuid():
    assert UUID(0x2902) != b"\x02\x29"


def test_uuid_is_immutable():
    with pytest.raises(AttributeError):
        UUID(1)._data = b"\x00\x00"


def test_micropython_uuid_is_a_neutral_uuid_equal_to_the_same_bytes():
    from blebridge.micropython import UUID as MpUUID
    assert isinstance(MpUUID(0x180D), UUID) and MpUUID(0x180D) == UUID(0x180D)
