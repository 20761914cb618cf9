"""wireless.ble_beacons: payloads as the Eddystone and iBeacon specifications lay them out."""
import pytest

from blebridge.zerynth import beacons as bb

EDDY_HEAD = bytes.fromhex("0201060303aafe")


def test_uid_payload_pads_namespace_and_instance():
    p = bb.eddy_encode_uid("Zerynth", "Python", -69)
    assert bytes(p) == EDDY_HEAD + bytes([23, 0x16, 0xAA, 0xFE, 0x00, 0xBB]) + b"Zerynth\0\0\0" + b"Python" + b"\0\0"


def test_url_payload_compresses_scheme_and_ending():
    p = bb.eddy_encode_url("https://www.zerynth.com", -69)
    assert bytes(p[11:]) == bytes([0x10, 0xBB, 0x01]) + b"zerynth" + bytes([0x07])


def test_url_round_trips():
    url = "http://example.org/docs"
    assert bb.eddy_decode(bb.eddy_encode_url(url, 4)) == (url, 4)


def test_tlm_round_trips_a_negative_temperature():
    assert bb.eddy_decode(bb.eddy_encode_tlm(3000, -10.5, 7, 12.3)) == (3000, -10.5, 7, 12.3)


def test_tlm_without_temperature_decodes_none():
    assert bb.eddy_decode(bb.eddy_encode_tlm(1, None, 0, 0))[1] is None


def test_decode_type_tells_each_frame():
    assert [bb.eddy_decode_type(p) for p in (bb.eddy_encode_uid(b"", b"", 0), bb.eddy_encode_url("https://a.com", 0),
                                             bb.eddy_encode_tlm(0, 0, 0, 0))] == [bb.EDDY_UID, bb.EDDY_URL, bb.EDDY_LTM]


def test_decode_type_refuses_other_packets():
    with pytest.raises(ValueError):
        bb.eddy_decode_type(b"\x02\x01\x06\x05\x09abcd")


def test_ibeacon_payload_layout():
    p = bb.ibeacon_encode("fb0b57a2-8228-44cd-913a-94a122ba1206", 10, 3, -69)
    assert bytes(p) == (bytes.fromhex("0201061aff4c000215fb0b57a2822844cd913a94a122ba1206") + bytes([0, 10, 0, 3, 0xBB]))


def test_ibeacon_round_trips():
    uuid = bytes(range(16))
    assert bb.ibeacon_decode(bb.ibeacon_encode(uuid, 1, 2, -59)) == (uuid, 1, 2, -59)


def test_ibeacon_decode_refuses_other_packets():
    with pytest.raises(ValueError):
        bb.ibeacon_decode(bb.eddy_encode_uid(b"", b"", 0))


def test_url_without_scheme_is_refused():
    with pytest.raises(ValueError):
        bb.eddy_encode_url("www.zerynth.com", 0)


def test_url_too_long_for_a_payload_is_refused():
    with pytest.raises(ValueError):
        bb.eddy_encode_url("https://" + "x" * 30 + ".com", 0)


def test_txpower_out_of_a_byte_is_refused():
    with pytest.raises(ValueError):
        bb.eddy_encode_uid(b"", b"", 200)


def test_major_must_be_an_int():
    with pytest.raises(TypeError):
        bb.ibeacon_encode(bytes(16), "1", 2, 0)
