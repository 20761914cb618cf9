"""Property-based tests (hypothesis) of the host's frame decoder, blebridge.framing.

Any byte stream, in any chunking: the decoder returns payloads and counts errors, nothing
escapes it; the counters add up to the input; valid frames among garbage all come through.
Settings are fixed for CI: derandomized (the same examples every run), a fixed example count,
no deadline (the machine may be loaded), no example database on disk.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blebridge.framing import (MAX_ENCODED, MAX_PAYLOAD, FrameDecoder, cobs_decode, cobs_encode, crc16,
                               encode_frame)

CI = settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Bytes biased towards the COBS edge cases: 0x00 (delimiters, implied zeros), 0xFF (full
# blocks), small values (block codes that point just past the end).
edge_byte = st.one_of(st.sampled_from([0x00, 0x00, 0x01, 0x02, 0xFF, 0xFE]), st.integers(0, 255))
edge_bytes = st.lists(edge_byte, max_size=600).map(bytes)
payload = st.one_of(st.binary(min_size=1, max_size=MAX_PAYLOAD),
                    st.lists(edge_byte, min_size=1, max_size=600).map(bytes))


def _crc_le(data: bytes) -> bytes:
    crc = crc16(data)
    return bytes((crc & 0xFF, crc >> 8))


# Pieces a stream is made of: what a board, a bootloader or a noisy line put on the wire.
piece = st.one_of(
    st.binary(max_size=64),                                         # noise
    edge_bytes,
    payload.map(encode_frame),                                      # good frames
    payload.map(lambda p: encode_frame(p)[:-1]),                    # a frame cut short
    payload.map(lambda p: encode_frame(p)[:-2] + b"\x00"),          # a frame missing a byte
    payload.map(lambda p: cobs_encode(p + bytes(2)) + b"\x00"),     # valid COBS, CRC 0000
    st.tuples(st.integers(1, 255), st.integers(0, 2 * MAX_ENCODED)).map(
        lambda t: bytes([t[0]]) * t[1]),                            # long runs, no delimiter
    st.integers(MAX_PAYLOAD + 1, MAX_PAYLOAD + 4).map(              # zero-rich: COBS within
        lambda n: cobs_encode(bytes(n) + _crc_le(bytes(n))) + b"\x00"),  # MAX_ENCODED, too long
    st.just(cobs_encode(_crc_le(b"")) + b"\x00"),                   # valid CRC, empty payload
    st.just(b"\x00"),
)
stream = st.one_of(st.lists(piece, max_size=10).map(b"".join), st.binary(max_size=3 * MAX_ENCODED))


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def feed_all(dec: FrameDecoder, chunks: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for c in chunks:
        out += dec.feed(c)
    return out


@CI
@given(stream, st.lists(st.integers(0, 10_000), max_size=40))
def test_any_stream_in_any_chunking_gives_the_same_payloads_and_counters(data, cuts):
    whole, parts = FrameDecoder(), FrameDecoder()
    assert feed_all(parts, chunked(data, cuts)) == whole.feed(data)
    assert parts.counters() == whole.counters()
    assert parts.pending_bytes == whole.pending_bytes


@CI
@given(stream, st.lists(st.integers(0, 10_000), max_size=40))
def test_payloads_are_within_the_frame_limits(data, cuts):
    for p in feed_all(FrameDecoder(), chunked(data, cuts)):
        assert isinstance(p, bytes) and 1 <= len(p) <= MAX_PAYLOAD


@CI
@given(stream)
def test_each_delimited_part_is_one_frame_or_all_garbage(data):
    for part in data.split(b"\x00")[:-1]:
        if not part:
            continue
        dec = FrameDecoder()
        frames = dec.feed(part + b"\x00")
        c = dec.counters()
        if frames:
            assert (len(frames), c["garbage_bytes"], c["crc_errors"], c["oversize"]) == (1, 0, 0, 0)
        else:
            assert c["garbage_bytes"] == len(part)
            assert c["crc_errors"] + c["oversize"] <= 1


@CI
@given(stream, st.lists(st.integers(0, 10_000), max_size=40))
def test_counters_add_up_to_the_sum_over_the_delimited_parts(data, cuts):
    dec = FrameDecoder()
    out = feed_all(dec, chunked(data, cuts))
    *parts, tail = data.split(b"\x00")
    want = {"frames": 0, "crc_errors": 0, "garbage_bytes": 0, "oversize": 0}
    want_out: list[bytes] = []
    frame_bytes = 0
    for part in parts:
        one = FrameDecoder()
        got = one.feed(part + b"\x00")
        want_out += got
        frame_bytes += len(part) if got else 0
        for k, v in one.counters().items():
            want[k] += v
    if len(tail) > MAX_ENCODED:          # an unfinished frame already too long: dropped
        want["oversize"] += 1
        want["garbage_bytes"] += len(tail)
    assert out == want_out
    assert dec.counters() == want
    # every byte is a delimiter, part of a good frame, garbage, or of the frame still pending
    pending = dec.pending_bytes
    assert len(data) == data.count(0) + frame_bytes + dec.garbage_bytes + pending


@CI
@given(st.lists(st.tuples(stream, payload), min_size=1, max_size=6),
       st.lists(st.integers(0, 100_000), max_size=40))
def test_valid_frames_among_garbage_are_all_recovered_in_order(pairs, cuts):
    data = b""
    want: list[bytes] = []
    for garbage, p in pairs:
        # What the garbage itself decodes to when delimited (almost always nothing: a CRC
        # would have to match by chance).
        want += FrameDecoder().feed(garbage + b"\x00")
        want.append(p)
        data += garbage + b"\x00" + encode_frame(p)
    dec = FrameDecoder()
    assert feed_all(dec, chunked(data, cuts)) == want
    assert dec.frames == len(want)
    assert dec.pending_bytes == 0


@CI
@given(st.binary(max_size=2 * MAX_ENCODED))
def test_cobs_decode_of_any_body_is_data_or_value_error(body):
    try:
        out = cobs_decode(body)
    except ValueError:
        return
    assert isinstance(out, bytes)


@CI
@given(st.one_of(st.binary(max_size=2000), st.lists(edge_byte, max_size=800).map(bytes)))
def test_cobs_round_trips_any_data(data):
    enc = cobs_encode(data)
    assert b"\x00" not in enc
    assert cobs_decode(enc) == data


@CI
@given(st.binary(min_size=MAX_PAYLOAD + 1, max_size=MAX_PAYLOAD + 64))
def test_encode_frame_refuses_payloads_over_max_frame_with_value_error(data):
    try:
        encode_frame(data)
    except ValueError as e:
        assert "MAX_FRAME" in str(e)
    else:
        raise AssertionError("encode_frame accepted a payload over MAX_FRAME")
