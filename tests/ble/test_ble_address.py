"""Addresses (blebridge.ble.address): byte order, text, types."""
import pytest

from blebridge import protocol as P
from blebridge.ble import address

MSB = bytes.fromhex("C0FFEE000001")
WIRE = MSB[::-1]


def test_from_wire_reverses_to_most_significant_first():
    assert address.from_wire(WIRE) == MSB


def test_to_wire_reverses_to_least_significant_first():
    assert address.to_wire(MSB) == WIRE


def test_format_writes_uppercase_colon_separated():
    assert address.format(MSB) == "C0:FF:EE:00:00:01"


def test_format_wire_writes_the_wire_bytes_most_significant_first():
    assert address.format_wire(WIRE) == "C0:FF:EE:00:00:01"


def test_format_of_a_short_address_is_a_value_error():
    with pytest.raises(ValueError, match="6 bytes, not 5"):
        address.format(MSB[:5])


def test_format_of_a_non_buffer_is_a_type_error():
    with pytest.raises(TypeError):
        address.format(12)


@pytest.mark.parametrize("text", ["C0:FF:EE:00:00:01", "c0-ff-ee-00-00-01", "c0ffee000001"])
def test_parse_reads_the_usual_spellings(text):
    assert address.parse(text) == MSB


def test_parse_wire_gives_the_wire_order():
    assert address.parse_wire("C0:FF:EE:00:00:01") == WIRE


def test_parse_of_too_few_bytes_is_a_value_error():
    with pytest.raises(ValueError, match="not an address"):
        address.parse("C0:FF:EE:00:00")


def test_parse_of_a_non_hex_byte_is_a_value_error():
    with pytest.raises(ValueError, match="hex digits expected"):
        address.parse("C0:FF:EE:00:00:ZZ")


def test_types_are_the_protocols():
    assert (address.PUBLIC, address.RANDOM) == (P.CONSTANTS["addr_type"]["PUBLIC"],
                                                P.CONSTANTS["addr_type"]["RANDOM"])


@pytest.mark.parametrize("first, kind", [(0xC0, address.STATIC), (0x40, address.RESOLVABLE),
                                         (0x00, address.NON_RESOLVABLE)])
def test_random_kind_is_read_from_the_top_two_bits(first, kind):
    assert address.random_kind(bytes([first]) + MSB[1:]) == kind


def test_random_kind_of_the_reserved_pattern_is_a_value_error():
    with pytest.raises(ValueError, match="reserved"):
        address.random_kind(bytes([0x80]) + MSB[1:])


def test_ident_is_twelve_uppercase_hex_digits_most_significant_first():
    assert address.ident(WIRE) == "C0FFEE000001"
