"""wireless.ble's argument checks and conversions, without a board: the errors Zerynth's API
raises for bad input (TypeError for the wrong type, ValueError out of range)."""
import pytest

from blebridge.zerynth import ble


def test_btos_writes_zerynth_hex_bytes():
    assert ble.btos(b"\xc0\xff\x0e\x00\x01\x9a") == "C0:FF:0E:00:01:9A"


def test_btos_of_an_int_is_its_hex():
    assert (ble.btos(3), ble.btos(-60)) == ("03", "C4")


def test_btos_refuses_text():
    with pytest.raises(TypeError):
        ble.btos("C0:FF")


def test_zerynth_hex_pads_by_range():
    assert [ble.hex_byte(x) for x in (5, 255, 256, 70000, -42)] == ["0x05", "0xFF", "0x0100", "0x00011170", "0xD6"]


def test_service_with_base_uuid_substitutes_bytes_13_and_14():
    s = ble.Service(0xA001, bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 15, 16]))
    assert str(s.full_uuid()).lower() == "100fa001-0c0b-0a09-0807-060504030201"


def test_service_base_uuid_must_have_16_bytes():
    with pytest.raises(ValueError):
        ble.Service(0x1800, bytes(15))


def test_service_uuid_must_be_16_bit():
    with pytest.raises(ValueError):
        ble.Service(0x10000)


def test_add_characteristic_sets_its_service():
    s = ble.Service(0x180F)
    c = ble.Characteristic(0x2A19, ble.READ, 1, "Battery Level")
    s.add_characteristic(c)
    assert c.service == 0x180F and s.chs == {0x2A19: c}


def test_add_characteristic_refuses_other_objects():
    with pytest.raises(TypeError):
        ble.Service(0x180F).add_characteristic(0x2A19)


def test_number_value_is_little_endian_of_size():
    c = ble.Characteristic(0x2A19, ble.READ, 2, "n", ble.NUMBER)
    c.set_value(0x1234)
    assert (c._value, c.get_value()) == (b"\x34\x12", 0x1234)


def test_negative_number_is_twos_complement():
    c = ble.Characteristic(0x2A19, ble.READ, 1, "n", ble.NUMBER)
    c.set_value(-1)
    assert c._value == b"\xff"


def test_number_too_big_for_its_size_is_refused():
    c = ble.Characteristic(0x2A19, ble.READ, 1, "n", ble.NUMBER)
    with pytest.raises(ValueError):
        c.set_value(256)


def test_number_characteristic_refuses_text():
    c = ble.Characteristic(0x2A19, ble.READ, 1, "n", ble.NUMBER)
    with pytest.raises(TypeError):
        c.set_value("1")


def test_string_value_round_trips():
    c = ble.Characteristic(0x2A3D, ble.READ, 10, "s", ble.STRING)
    c.set_value("héllo")
    assert c.get_value() == "héllo"


def test_bytes_value_longer_than_size_is_refused():
    c = ble.Characteristic(0x2A47, ble.READ, 2, "b", ble.BYTES)
    with pytest.raises(ValueError):
        c.set_value(b"abc")


def test_initial_value_is_size_zero_bytes():
    assert ble.Characteristic(0x2A47, ble.READ, 16, "b", ble.BYTES).get_value() == bytes(16)


def test_unknown_permission_bits_are_refused():
    with pytest.raises(ValueError):
        ble.Characteristic(0x2A47, 0x100, 1, "x")


def test_size_zero_is_refused():
    with pytest.raises(ValueError):
        ble.Characteristic(0x2A47, ble.READ, 0, "x")


def test_unknown_type_is_refused():
    with pytest.raises(ValueError):
        ble.Characteristic(0x2A47, ble.READ, 1, "x", 3)


def test_descriptor_must_be_text():
    with pytest.raises(TypeError):
        ble.Characteristic(0x2A47, ble.READ, 1, b"x")


def test_set_callback_refuses_a_non_callable():
    with pytest.raises(TypeError):
        ble.Characteristic(0x2A47, ble.WRITE, 1, "x").set_callback(3)


def test_module_functions_need_a_driver_first():
    ble.close_all()
    with pytest.raises(RuntimeError, match="bledrv.init"):
        ble.default()


def test_module_constants_are_zerynths_values():
    assert (ble.READ, ble.WRITE, ble.NOTIFY, ble.EVT_ADV_STOPPED, ble.ADV_UNCN_UND, ble.CAP_KB_DISPLAY,
            ble.AUTH_SC, ble.KEY_LNK) == (2, 8, 16, 9, 3, 4, 4, 8)


def test_constant_names_are_only_the_apis_ints():
    assert "P" not in ble.CONSTANT_NAMES and "UUID" not in ble.CONSTANT_NAMES and len(ble.CONSTANT_NAMES) == 47
