"""Random input into a simulated board for FUZZ_SECONDS: it never dies and still answers.

The board runs a build of bb_sim with AddressSanitizer and UBSan (compiled into the test's
temporary directory), so an out-of-bounds access or undefined behaviour the input provokes
kills it and fails the test with the sanitizer's report from the board's log, rather than
passing unnoticed.
"""
from __future__ import annotations

import importlib.util
import os
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import cbor2
import pytest

from blebridge import protocol as P
from e2e_link import RawLink, frame_of

REPO = Path(__file__).resolve().parents[2]
#: How long random input is sent (s); with the sanitizer build the test stays under 30 s.
#: Env BLEBRIDGE_FUZZ_SECONDS and BLEBRIDGE_FUZZ_SEED override duration and seed for longer hunts.
FUZZ_SECONDS = float(os.environ.get("BLEBRIDGE_FUZZ_SECONDS", "18"))
FUZZ_SEED = int(os.environ.get("BLEBRIDGE_FUZZ_SEED", "0xB1EB"), 0)
#: The board must answer an echo within this long at every liveness check (s). A port call that
#: the air refuses to answer can block the board for BB_SIM_AIR_CALL_TIMEOUT_MS (3 s).
ALIVE_WITHIN_S = 8.0
#: Seconds between liveness checks during the run.
CHECK_EVERY_S = 0.5

# bench_events with a random count would keep the board busy for hours: left out.
METHOD_IDS = sorted(m.id for name, m in P.METHODS.items() if name != "bench_events")
BENCH_ID = P.METHODS["bench_events"].id


@pytest.fixture(scope="module")
def sanitized_firmware(tmp_path_factory: pytest.TempPathFactory) -> str:
    """bb_sim built with -fsanitize=address,undefined (core, zcbor and the sim port)."""
    gcc = shutil.which("gcc")
    spec = importlib.util.find_spec("zcbor")
    if gcc is None or spec is None or not spec.submodule_search_locations:
        pytest.skip("needs gcc and the zcbor package")
    zcbor = Path(list(spec.submodule_search_locations)[0])
    core = REPO / "firmware" / "core"
    sim = REPO / "firmware" / "ports" / "sim"
    exe = tmp_path_factory.mktemp("bb_sim_asan") / "bb_sim"
    sources = [*sorted(core.glob("*.c")), *sorted(sim.glob("*.c")),
               *(zcbor / "src" / f for f in ("zcbor_common.c", "zcbor_decode.c", "zcbor_encode.c"))]
    r = subprocess.run([gcc, "-std=gnu11", "-O1", "-g", "-DZCBOR_CANONICAL", "-fno-strict-aliasing",
                        "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                        "-fno-omit-frame-pointer", f"-I{core}", f"-I{sim}", f"-I{zcbor / 'include'}",
                        *map(str, sources), "-o", str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return str(exe)


@pytest.fixture
def fuzz_board(sanitized_firmware: str, start_board: Callable[..., Any],
               monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("BLEBRIDGE_SIM_FIRMWARE", sanitized_firmware)
    # The sanitized build is bb_sim, the sim port's board: a run on NimBLE boards
    # (BLEBRIDGE_SIM_STACK=nimble) fuzzes it too, not bb_nimble_sim.
    monkeypatch.setenv("BLEBRIDGE_SIM_STACK", "bumble")
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1")
    monkeypatch.setenv("UBSAN_OPTIONS", "print_stacktrace=1")
    return start_board()


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A random CBOR value: every major type, edge integers, long strings, nesting."""
    kind = rng.randrange(12 if depth < 4 else 9)
    if kind == 0:
        return rng.choice((0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1))
    if kind == 1:
        return rng.randrange(0, 70000)
    if kind == 2:
        return -rng.choice((1, 24, 129, 2**31, 2**31 + 1, 2**63, 2**64))
    if kind == 3:
        return bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 31, 32, 300, 513))))
    if kind == 4:
        return "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.choice((0, 1, 10, 64, 65, 200))))
    if kind == 5:
        return rng.choice((True, False, None))
    if kind == 6:
        return rng.choice((0.5, float("nan"), -1e300))
    if kind == 7:
        return cbor2.CBORTag(rng.randrange(0, 300), rng.randrange(10))
    if kind == 8:
        return cbor2.undefined
    if kind == 9:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(6))]
    if kind == 10:
        return {rng.randrange(10): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    # A gatts_register_services-shaped value with random holes.
    chr_ = [rng.choice((b"\x19\x2a", b"\x01", bytes(16))), rng.randrange(0, 1 << 19),
            rng.choice((0, 1, 20, 512, 513, 70000)), bytes(rng.choice((0, 1, 20, 513))),
            [[b"\x02\x29", 0x0A, rng.choice((0, 2, 600)), b""] for _ in range(rng.randrange(3))]]
    return [[rng.choice((b"\x0f\x18", bytes(16))), [chr_] * rng.choice((1, 2, 33))]
            for _ in range(rng.choice((1, 2, 9)))]


def random_payload(rng: random.Random) -> bytes:
    """A frame payload: mostly plausible requests, some broken CBOR."""
    roll = rng.random()
    if roll < 0.6:
        method = rng.choice(METHOD_IDS) if rng.random() < 0.9 else rng.randrange(0, 2**33)
        args = [random_value(rng) for _ in range(rng.choice((0, 1, 2, 3, 4, 7, 10, 11)))]
        return cbor2.dumps([P.MSG_REQ, rng.randrange(2**32), method, *args])
    if roll < 0.7:   # a bounded benchmark now and then: events and responses interleave
        return cbor2.dumps([P.MSG_REQ, rng.randrange(2**32), BENCH_ID, rng.randrange(50), rng.randrange(200)])
    if roll < 0.85:  # a request cut short or with flipped bytes
        b = bytearray(cbor2.dumps([P.MSG_REQ, 1, rng.choice(METHOD_IDS), random_value(rng)]))
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b[:rng.randrange(1, len(b) + 1)])
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))


def random_chunk(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.7:
        return frame_of(random_payload(rng))
    if roll < 0.8:                                  # bytes with no delimiter (joins the next frame)
        return bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 2000)))
    if roll < 0.9:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    return b"\x00" * rng.randrange(1, 4)


def echo_within(link: RawLink, timeout: float) -> bool:
    """The board answers an echo within ``timeout`` s. The radio is turned on too (random
    calls turn it off) so that random radio calls reach the port, not only NOT_ACTIVE."""
    rid = 0xEC40
    data = b"\x00alive\x00"
    link.write(b"\x00" + frame_of(cbor2.dumps([P.MSG_REQ, rid + 1, P.METHODS["ble_active"].id, True]))
               + frame_of(cbor2.dumps([P.MSG_REQ, rid, P.METHODS["echo"].id, data])))
    try:
        return link.wait_response(rid, timeout) == [P.MSG_RSP, rid, 0, data]
    except AssertionError:
        return False


def board_log(board: Any) -> str:
    """The end of the board's stderr log (the launcher keeps it next to the air socket)."""
    logs = sorted(Path(board.air).parent.rglob(f"{board.name}.log"))
    return "\n".join(p.read_text(errors="replace")[-4000:] for p in logs) or "(no log found)"


def test_random_input_never_kills_the_board_and_it_still_answers(fuzz_board: Any, sanitized_firmware: str):
    assert os.readlink(f"/proc/{fuzz_board.pid}/exe") == sanitized_firmware
    rng = random.Random(FUZZ_SEED)
    link = RawLink(fuzz_board.pty)
    sent = 0
    try:
        end = time.monotonic() + FUZZ_SECONDS
        next_check = time.monotonic() + CHECK_EVERY_S
        while time.monotonic() < end:
            chunk = random_chunk(rng)
            link.write(chunk)
            sent += len(chunk)
            link.pump(0)
            link.responses.clear()
            link.events.clear()
            if time.monotonic() >= next_check:
                assert fuzz_board.alive(), f"board died after {sent} bytes (seed {FUZZ_SEED:#x}):\n{board_log(fuzz_board)}"
                assert echo_within(link, ALIVE_WITHIN_S), \
                    f"board stopped answering after {sent} bytes (seed {FUZZ_SEED:#x}):\n{board_log(fuzz_board)}"
                next_check = time.monotonic() + CHECK_EVERY_S
        assert fuzz_board.alive(), f"board died after {sent} bytes (seed {FUZZ_SEED:#x}):\n{board_log(fuzz_board)}"
        assert echo_within(link, ALIVE_WITHIN_S), f"no echo after {sent} bytes (seed {FUZZ_SEED:#x}):\n{board_log(fuzz_board)}"
        link.responses.clear()
        d = link.diagnostics()
        # The mix reached every layer: framing, parsing, validation and the handlers.
        assert d["crc_errors"] > 0 and d["garbage_bytes"] > 0 and d["malformed"] > 0
        assert d["unknown_method"] > 0 and d["bad_args"] > 0 and d["too_large"] > 0
    finally:
        link.close()
