"""Framing: COBS + CRC-16/CCITT-FALSE, incremental decoding, error counters."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from blebridge.framing import (MAX_ENCODED, MAX_PAYLOAD, FrameDecoder, cobs_decode, cobs_encode, crc16,
                               encode_frame)

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "frames.json").read_text())


def random_payload(rng: random.Random, n: int) -> bytes:
    # Bias towards 0x00 and 0xFF: the COBS edge cases (implied zeros, full blocks).
    return bytes(rng.choice((0, 0, 0xFF, rng.randrange(256))) for _ in range(n))


def feed_in_random_chunks(dec: FrameDecoder, data: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.choice((1, 2, 3, 7, 64, 500, 4096))
        out += dec.feed(data[i:i + n])
        i += n
    return out


@pytest.mark.parametrize("case", VECTORS["crc16"], ids=lambda c: c["note"])
def test_crc16_matches_the_ccitt_false_vectors(case):
    assert crc16(bytes.fromhex(case["data"])) == case["crc"]


@pytest.mark.parametrize("case", VECTORS["cobs"], ids=lambda c: c["note"])
def test_cobs_encode_matches_the_vectors(case):
    assert cobs_encode(bytes.fromhex(case["data"])).hex() == case["encoded"]


@pytest.mark.parametrize("case", VECTORS["cobs"], ids=lambda c: c["note"])
def test_cobs_decode_inverts_the_vectors(case):
    assert cobs_decode(bytes.fromhex(case["encoded"])).hex() == case["data"]


@pytest.mark.parametrize("case", VECTORS["frames"], ids=lambda c: c["note"])
def test_encode_frame_matches_the_vectors(case):
    assert encode_frame(bytes.fromhex(case["payload"])).hex() == case["frame"]


@pytest.mark.parametrize("case", VECTORS["frames"], ids=lambda c: c["note"])
def test_decoder_returns_the_payload_of_each_vector(case):
    assert FrameDecoder().feed(bytes.fromhex(case["frame"])) == [bytes.fromhex(case["payload"])]


def test_cobs_decode_accepts_a_trailing_empty_block_after_a_full_block():
    data = bytes(range(1, 255))
    assert cobs_decode(b"\xff" + data + b"\x01") == data


def test_cobs_round_trips_random_data():
    rng = random.Random(1)
    for _ in range(3000):
        p = random_payload(rng, rng.randrange(1, 1300))
        assert cobs_decode(cobs_encode(p)) == p


def test_frames_hold_no_zero_byte_before_the_delimiter():
    rng = random.Random(2)
    for _ in range(500):
        f = encode_frame(random_payload(rng, rng.randrange(1, MAX_PAYLOAD)))
        assert f.index(0) == len(f) - 1


def test_decoder_handles_random_chunk_sizes_with_garbage_between_frames():
    rng = random.Random(3)
    payloads = [random_payload(rng, rng.randrange(1, 600)) for _ in range(300)]
    stream = bytearray()
    for p in payloads:
        if rng.random() < 0.3:
            stream += b"boot: hello\r\n\x00"        # text on the line, ended by a delimiter
        stream += encode_frame(p)
    dec = FrameDecoder()
    assert feed_in_random_chunks(dec, bytes(stream), rng) == payloads
    assert dec.frames == len(payloads)


def test_decoder_counts_a_crc_mismatch_and_skips_the_frame():
    good = encode_frame(b"\x82\x01\x02")
    bad = bytearray(encode_frame(b"\x82\x01\x03"))
    bad[2] ^= 0x40                                 # corrupt a data byte (still non-zero)
    dec = FrameDecoder()
    assert dec.feed(bytes(bad) + good) == [b"\x82\x01\x02"]
    assert (dec.crc_errors, dec.garbage_bytes) == (1, len(bad) - 1)


def test_decoder_counts_text_on_the_line_as_garbage():
    dec = FrameDecoder()
    assert dec.feed(b"rst:0x1 (POWERON_RESET)\r\n\x00" + encode_frame(b"\x01")) == [b"\x01"]
    assert dec.garbage_bytes == len(b"rst:0x1 (POWERON_RESET)\r\n")


def test_decoder_ignores_empty_frames():
    dec = FrameDecoder()
    assert dec.feed(b"\x00\x00\x00" + encode_frame(b"\x01") + b"\x00") == [b"\x01"]
    assert (dec.frames, dec.garbage_bytes, dec.crc_errors) == (1, 0, 0)


def test_decoder_drops_an_oversize_frame_and_resumes_after_the_next_delimiter():
    dec = FrameDecoder()
    junk = b"\x41" * (MAX_ENCODED + 10)
    out = dec.feed(junk[:700]) + dec.feed(junk[700:]) + dec.feed(b"\x41\x41\x00" + encode_frame(b"\x07"))
    assert out == [b"\x07"]
    assert dec.oversize == 1
    assert dec.garbage_bytes == len(junk) + 2


def test_decoder_keeps_a_partial_frame_across_feeds():
    f = encode_frame(b"\xa1\x61\x61\x01")
    dec = FrameDecoder()
    assert dec.feed(f[:3]) == []
    assert dec.pending_bytes == 3
    assert dec.feed(f[3:]) == [b"\xa1\x61\x61\x01"]


def test_encode_frame_refuses_payloads_over_max_frame():
    with pytest.raises(ValueError, match="MAX_FRAME"):
        encode_frame(bytes(MAX_PAYLOAD + 1))
