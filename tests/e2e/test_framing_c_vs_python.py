"""The firmware's framing (firmware/core/bb_frame.c) against the shared vectors and the host's
(host/blebridge/framing.py): same CRC, byte-identical frames, same payloads and counters from
the same byte stream however it is chunked.

bb_frame.c is compiled with a small driver (frame_driver.c) into the test's temporary directory.
"""
from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from blebridge import protocol as P
from blebridge.framing import FrameDecoder, cobs_encode, crc16, encode_frame

REPO = Path(__file__).resolve().parents[2]
VECTORS = json.loads((REPO / "tests" / "vectors" / "frames.json").read_text())
MAX_FRAME = P.LIMITS["MAX_FRAME"]

Driver = Callable[[list[str]], list[str]]


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Driver:
    """run(commands) -> output lines of frame_driver (commands in its stdin grammar)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    exe = tmp_path_factory.mktemp("frame_driver") / "frame_driver"
    core = REPO / "firmware" / "core"
    subprocess.run([gcc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                    f"-I{core}", str(Path(__file__).with_name("frame_driver.c")),
                    str(core / "bb_frame.c"), "-o", str(exe)],
                   check=True, capture_output=True, text=True)

    def run(commands: list[str]) -> list[str]:
        r = subprocess.run([str(exe)], input="\n".join(commands) + "\n", capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    return run


def c_encode(driver: Driver, payloads: list[bytes]) -> list[bytes | None]:
    out = driver([f"E {p.hex()}" for p in payloads])
    return [None if line == "E !" else bytes.fromhex(line[2:]) for line in out]


def c_decode(driver: Driver, chunks: list[bytes]) -> tuple[list[bytes], dict[str, int]]:
    """Payloads the C decoder delivers from ``chunks`` fed in order, and its counters."""
    out = driver([f"D {c.hex()}" for c in chunks] + ["S"])
    payloads = [bytes.fromhex(line[2:]) for line in out if line.startswith("F ")]
    frames, crc_errors, garbage, oversize = (int(x) for x in out[-1].split()[1:])
    return payloads, {"frames": frames, "crc_errors": crc_errors, "garbage_bytes": garbage,
                      "oversize": oversize}


def py_decode(chunks: list[bytes]) -> tuple[list[bytes], dict[str, int]]:
    dec = FrameDecoder()
    payloads = [p for c in chunks for p in dec.feed(c)]
    return payloads, dec.counters()


def random_chunks(rng: random.Random, data: bytes) -> list[bytes]:
    """``data`` cut at random points: single bytes up to a few frames at a time."""
    chunks, i = [], 0
    while i < len(data):
        n = rng.choice((1, 2, 3, 7, 64, 255, 256, 1000, 4096))
        chunks.append(data[i:i + n])
        i += n
    return chunks


def nonzero_crc_payload(rng: random.Random, n: int) -> bytes:
    """``n`` zero-free bytes whose CRC bytes are zero-free too: payload + CRC is one run."""
    while True:
        p = bytes(rng.randrange(1, 256) for _ in range(n))
        c = crc16(p)
        if c & 0xFF and c >> 8:
            return p


def tricky_payloads(rng: random.Random) -> list[bytes]:
    """Payloads around COBS block boundaries, all-zero ones, and random ones up to MAX_FRAME."""
    out = [bytes([0]), bytes([0xFF]), bytes(MAX_FRAME), b"\xff" * MAX_FRAME]
    for run in (251, 252, 253, 254, 255, 506, 508, 509, 1000):
        out.append(nonzero_crc_payload(rng, run))          # payload+CRC: runs of 253..1002
        out.append(bytes([0]) + nonzero_crc_payload(rng, run))
        out.append(bytes(rng.randrange(1, 256) for _ in range(run)) + bytes(1))
    for n in (1, 2, 253, 254, 255, 256, 1199, 1200):
        out.append(bytes(n))                               # all-zero
    for _ in range(200):
        n = rng.randrange(1, MAX_FRAME + 1)
        zeros = rng.choice((0.0, 0.01, 0.5, 1.0))
        out.append(bytes(0 if rng.random() < zeros else rng.randrange(1, 256) for _ in range(n)))
    return out


def test_c_crc16_matches_vectors(driver: Driver):
    out = driver([f"C {v['data']}" for v in VECTORS["crc16"]])
    assert [int(line[2:]) for line in out] == [v["crc"] for v in VECTORS["crc16"]]


def test_c_encoder_matches_frame_vectors(driver: Driver):
    payloads = [bytes.fromhex(v["payload"]) for v in VECTORS["frames"]]
    got = c_encode(driver, payloads)
    for v, frame in zip(VECTORS["frames"], got):
        assert frame is not None and frame.hex() == v["frame"], v["note"]


def test_c_decoder_delivers_frame_vector_payloads(driver: Driver):
    frames = [bytes.fromhex(v["frame"]) for v in VECTORS["frames"]]
    payloads, counters = c_decode(driver, frames)
    assert payloads == [bytes.fromhex(v["payload"]) for v in VECTORS["frames"]]
    assert counters == {"frames": len(frames), "crc_errors": 0, "garbage_bytes": 0, "oversize": 0}


def test_c_decoder_accepts_cobs_vectors_with_either_ending(driver: Driver):
    # The cobs vectors are bare COBS bodies (no CRC): wrap each decoded body in a frame whose
    # COBS is the vector's, then also with Cheshire and Baker's trailing 0x01 after a full block.
    frames, want = [], []
    for v in VECTORS["cobs"]:
        data = bytes.fromhex(v["data"])
        c = crc16(data)
        body = cobs_encode(data + bytes((c & 0xFF, c >> 8)))
        frames.append(body + b"\x00")
        want.append(data)
        if body[-255:-254] == b"\xff" and len(body) % 255 == 0:
            frames.append(body + b"\x01\x00")
            want.append(data)
    payloads, counters = c_decode(driver, frames)
    assert payloads == want and counters["garbage_bytes"] == 0


def test_c_encoder_matches_python_on_random_and_block_boundary_payloads(driver: Driver):
    rng = random.Random(20261121)
    payloads = tricky_payloads(rng)
    got = c_encode(driver, payloads)
    for p, frame in zip(payloads, got):
        assert frame == encode_frame(p), f"payload of {len(p)} bytes: {p[:16].hex()}..."


def test_c_encoder_refuses_what_python_refuses(driver: Driver):
    assert c_encode(driver, [b"", bytes(MAX_FRAME + 1)]) == [None, None]
    with pytest.raises(ValueError):
        encode_frame(bytes(MAX_FRAME + 1))


def test_c_and_python_decoders_agree_on_a_randomly_chunked_stream_with_garbage(driver: Driver):
    rng = random.Random(7)
    stream, want = bytearray(), []
    payloads = tricky_payloads(rng)
    rng.shuffle(payloads)
    for i, p in enumerate(payloads):
        frame = encode_frame(p)
        kind = i % 6
        if kind == 1:                          # boot text and random bytes, then a delimiter
            stream += b"boot: text on the line\r\n" + bytes(rng.randrange(1, 256) for _ in range(40)) + b"\x00"
        elif kind == 2:                        # a frame with one flipped bit: CRC error or bad COBS
            bad = bytearray(frame)
            j = rng.randrange(0, len(bad) - 1)
            bad[j] ^= 1 << rng.randrange(8)
            if 0 in bad[:-1]:
                bad[j] ^= 0xFF                 # keep the delimiter where it was
            stream += bad
            continue
        elif kind == 3:                        # an oversize frame (valid CRC) by both measures
            stream += frame_of_raw(bytes(rng.randrange(1, 256) for _ in range(MAX_FRAME + 200)))
        elif kind == 4:
            stream += b"\x00\x00"              # empty frames
        stream += frame
        want.append(p)
    c_payloads, c_counters = c_decode(driver, random_chunks(rng, bytes(stream)))
    py_payloads, py_counters = py_decode(random_chunks(rng, bytes(stream)))
    assert c_payloads == want
    assert py_payloads == want
    assert c_counters == py_counters
    assert c_counters["crc_errors"] > 0 and c_counters["oversize"] > 0


def frame_of_raw(payload: bytes) -> bytes:
    c = crc16(payload)
    return cobs_encode(payload + bytes((c & 0xFF, c >> 8))) + b"\x00"


def test_c_decoder_rejects_payload_of_max_frame_plus_one(driver: Driver):
    for p in (bytes(MAX_FRAME + 1), b"\x01" * (MAX_FRAME + 1)):
        payloads, counters = c_decode(driver, [frame_of_raw(p)])
        assert payloads == [] and counters["oversize"] == 1


def test_python_decoder_rejects_payload_of_max_frame_plus_one():
    payloads, counters = py_decode([frame_of_raw(bytes(MAX_FRAME + 1))])
    assert payloads == [] and counters["oversize"] == 1
