"""Advertising data both ways (blebridge.ble.advertising)."""
import pytest

from blebridge.ble import advertising as ad
from blebridge.ble.uuid import UUID

NUS = UUID("6e400001-b5a3-f393-e0a9-e50e24dcca9e")
# Flags, complete name "alice", 16-bit services 0x180D 0x180F, manufacturer 0x0059 data 01 02.
SAMPLE = (b"\x02\x01\x06" + b"\x06\x09alice" + b"\x05\x03\x0d\x18\x0f\x18"
          + b"\x05\xff\x59\x00\x01\x02")


def test_structures_yields_type_and_value_in_order():
    assert list(ad.structures(b"\x02\x01\x06\x03\x19\x40\x03")) == [(0x01, b"\x06"), (0x19, b"\x40\x03")]


def test_zero_length_ends_the_significant_part():
    assert list(ad.structures(b"\x02\x01\x06\x00\x03\x09ab")) == [(0x01, b"\x06")]


def test_structure_running_past_the_end_is_dropped():
    assert list(ad.structures(b"\x02\x01\x06\x09\x09ab")) == [(0x01, b"\x06")]


def test_structure_running_past_the_end_is_a_value_error_when_strict():
    with pytest.raises(ValueError, match="at byte 3"):
        list(ad.structures(b"\x02\x01\x06\x09\x09ab", strict=True))


def test_structures_of_a_str_is_a_type_error():
    with pytest.raises(TypeError):
        list(ad.structures("abc"))


def test_find_gives_the_first_value_of_a_type():
    assert ad.find(SAMPLE, ad.NAME_COMPLETE) == b"alice"


def test_find_of_a_missing_type_is_none():
    assert ad.find(SAMPLE, ad.TX_POWER) is None


def test_find_all_gives_every_value_of_a_type():
    assert ad.find_all(b"\x02\x0a\x01\x02\x0a\x02", ad.TX_POWER) == [b"\x01", b"\x02"]


def test_name_prefers_the_complete_name():
    assert ad.name(b"\x03\x08al" + b"\x06\x09alice") == "alice"


def test_name_falls_back_to_the_shortened_name():
    assert ad.name(b"\x03\x08al") == "al"


def test_name_replaces_bytes_that_are_not_utf8():
    assert ad.name(b"\x03\x09a\xff") == "a\ufffd"


def test_flags_reads_the_flags_byte():
    assert ad.flags(SAMPLE) == 0x06


def test_service_uuids_reads_16_bit_lists():
    assert ad.service_uuids(SAMPLE) == [UUID(0x180D), UUID(0x180F)]


def test_service_uuids_reads_128_bit_lists():
    assert ad.service_uuids(b"\x11\x07" + NUS.bytes_le) == [NUS]


def test_service_uuids_ignores_a_partial_uuid_at_a_lists_end():
    assert ad.service_uuids(b"\x04\x03\x0d\x18\x0f") == [UUID(0x180D)]


def test_manufacturer_data_is_keyed_by_company_identifier():
    assert ad.manufacturer_data(SAMPLE) == {0x0059: b"\x01\x02"}


def test_manufacturer_structure_without_company_identifier_is_ignored():
    assert ad.manufacturer_data(b"\x02\xff\x59") == {}


def test_structure_prefixes_length_and_type():
    assert ad.structure(0x09, b"bob") == b"\x04\x09bob"


def test_structure_value_over_254_bytes_is_a_value_error():
    with pytest.raises(ValueError, match="at most 254"):
        ad.structure(0xFF, bytes(255))


def test_structure_type_over_a_byte_is_a_value_error():
    with pytest.raises(ValueError, match="AD type"):
        ad.structure(0x100, b"")


def test_flags_field_defaults_to_general_discoverable_le_only():
    assert ad.flags_field() == b"\x02\x01\x06"


def test_name_field_encodes_a_str_as_utf8():
    assert ad.name_field("é") == b"\x03\x09\xc3\xa9"


def test_shortened_name_field_has_its_own_type():
    assert ad.name_field("al", complete=False) == b"\x03\x08al"


def test_services_field_groups_uuids_by_size():
    assert ad.services_field([UUID(0x180D), NUS, UUID(0x180F)]) == (
        b"\x05\x03\x0d\x18\x0f\x18" + b"\x11\x07" + NUS.bytes_le)


def test_incomplete_services_field_uses_the_incomplete_types():
    assert ad.services_field([0x180D], complete=False) == b"\x03\x02\x0d\x18"


def test_manufacturer_field_puts_the_company_identifier_little_endian_first():
    assert ad.manufacturer_field(0x0059, b"\x01\x02") == b"\x05\xff\x59\x00\x01\x02"


def test_appearance_field_is_little_endian():
    assert ad.appearance_field(0x0340) == b"\x03\x19\x40\x03"


def test_payload_builds_what_the_readers_read_back():
    assert ad.payload(flags=ad.FLAGS_GENERAL_LE_ONLY, name="alice", services=[0x180D, 0x180F],
                      manufacturer=(0x0059, b"\x01\x02")) == SAMPLE


def test_payload_appends_ready_structures_last():
    assert ad.payload(b"\x02\x0a\x00", flags=0x06) == b"\x02\x01\x06\x02\x0a\x00"


def test_payload_over_31_bytes_is_a_value_error_naming_both_sizes():
    with pytest.raises(ValueError, match="32 bytes is over 31"):
        ad.payload(name="x" * 27, flags=0x06)


def test_payload_fits_a_larger_limit_when_given():
    assert len(ad.payload(name="x" * 100, limit=ad.EXTENDED_MAX)) == 102


def test_legacy_limit_is_31_bytes():
    assert ad.LEGACY_MAX == 31
