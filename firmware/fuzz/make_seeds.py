#!/usr/bin/env python3
"""Seed corpora for the libFuzzer harnesses in this directory (``make -C firmware fuzz``).

Writes <out>/<harness>/<name> files:
  fuzz_frame    wire bytes: every frame of tests/vectors/frames.json, alone, all in a row, and
                behind garbage; the COBS vectors as frames without a valid CRC
  fuzz_request  fuzz_records.h layout: one request per method of the schema built with
                cbor2 from protocol.METHODS (arguments of the right types), the request
                payloads of frames.json, and a session that registers services and uses them
  fuzz_sim_air  fuzz_records.h layout: one air event of each kind bb_port_sim.c delivers
Crash reproducers kept in firmware/fuzz/regressions/<harness>/ are copied in too, so that
every run replays them first.

Needs cbor2 and the blebridge package (the project's virtual environment has both).
"""
from __future__ import annotations

import argparse
import json
import shutil
import struct
from pathlib import Path

import cbor2

from blebridge import protocol as P
from blebridge.framing import encode_frame

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VECTORS = REPO / "tests" / "vectors" / "frames.json"

# fuzz_request.c flags: radio on; a connection (conn 1), an L2CAP channel (cid 0x40), questions 1..4.
REQ_ACTIVE_CONNECTED = 0x03
CONN = 1
CID = 0x40


def records(flags: int, payloads: list[bytes]) -> bytes:
    """fuzz_records.h layout: flags byte, then `len_lo len_hi payload` per payload."""
    return bytes([flags]) + b"".join(struct.pack("<H", len(p)) + p for p in payloads)


def request(req_id: int, method: str, *args: object) -> bytes:
    return cbor2.dumps([P.MSG_REQ, req_id, P.METHODS[method].id, *args])


SERVICES = [[b"\x0d\x18", [
    [b"\x37\x2a", P.CONSTANTS["flag"]["READ"] | P.CONSTANTS["flag"]["NOTIFY"], 20, b"",
     [[b"\x01\x29", P.CONSTANTS["flag"]["READ"], 20, b""]]],
    [b"\x38\x2a", P.CONSTANTS["flag"]["WRITE"] | P.CONSTANTS["flag"]["INDICATE"], 512, b"\x01", []],
]]]

# Argument values by name, then by type, for the one-request-per-method seeds.
BY_NAME = {
    "conn": CONN, "cid": CID, "psm": 0x80, "mtu": 100, "count": 3, "payload_len": 8,
    "value_handle": 12, "start_handle": 1, "end_handle": 0xFFFF, "host_major": P.PROTO_MAJOR,
    "host_minor": P.PROTO_MINOR, "services": SERVICES, "len": 64, "addr_type": 1,
    "interval_us": 100000, "duration_ms": 1000, "window_us": 50000, "key": P.CONSTANTS["config"]["MTU"],
    "value": 185, "token": 1, "action": P.CONSTANTS["passkey_action"]["INPUT"], "passkey": 123456,
}
BY_TYPE = {
    "uint": 1, "int": -20, "bool": True, "bytes": b"\x02\x01\x06", "str": "fuzz",
    "uuid": b"\x0d\x18", "addr": bytes([1, 2, 3, 4, 5, 0xC6]), "any": None,
}


def method_seeds() -> dict[str, bytes]:
    seeds = {}
    for name, m in P.METHODS.items():
        args = [BY_NAME.get(f.name, BY_TYPE[f.type]) for f in m.args]
        seeds[f"method-{name}"] = records(REQ_ACTIVE_CONNECTED, [request(7, name, *args)])
    for key, num in P.CONSTANTS["config"].items():
        value = {"GAP_NAME": "fuzz", "MAC": bytes([1, 2, 3, 4, 5, 0xC6])}.get(key, 1)
        seeds[f"config-{key}"] = records(0, [request(1, "config_get", num),
                                             request(2, "config_set", num, value)])
    flag = P.CONSTANTS["flag"]
    seeds["session-gatts"] = records(REQ_ACTIVE_CONNECTED, [
        request(1, "gatts_register_services", SERVICES),
        request(2, "gatts_set_buffer", 12, 100, True),
        request(3, "gatts_write", 12, b"hello", True),
        request(4, "gatts_read", 12),
        request(5, "gatts_notify", CONN, 12, None),
        request(6, "gatts_indicate", CONN, 15, b"x"),
        request(7, "gatts_register_services", [[b"\x0f\x18", [[b"\x19\x2a", flag["READ"], 1, b"", []]]]]),
        request(8, "diagnostics"),
        request(9, "reset"),
    ])
    seeds["session-questions"] = records(REQ_ACTIVE_CONNECTED, [
        request(1, "reply", 1, True), request(2, "reply", 2, False),
        request(3, "reply", 3, b"\x01" * 16), request(4, "reply", 4, None),
        request(5, "reply", 4, True),
    ])
    seeds["session-l2cap"] = records(REQ_ACTIVE_CONNECTED, [
        request(1, "l2cap_listen", 0x80, 512),
        request(2, "l2cap_send", CONN, CID, bytes(300)),
        request(3, "l2cap_disconnect", CONN, CID),
        request(4, "bench_events", 5, 20),
        request(5, "ble_active", False),
    ])
    return seeds


def frame_seeds(vectors: dict) -> dict[str, bytes]:
    frames = [bytes.fromhex(f["frame"]) for f in vectors["frames"]]
    seeds = {f"vector-{i:02d}": f for i, f in enumerate(frames)}
    seeds["vectors-all"] = b"".join(frames)
    seeds["garbage-then-frame"] = b"boot text\r\n" + b"\x00" + frames[0]
    seeds["chunked-half"] = frames[1][: len(frames[1]) // 2] + b"\x00" + frames[2]
    for i, c in enumerate(vectors["cobs"]):
        seeds[f"cobs-{i:02d}"] = bytes.fromhex(c["encoded"]) + b"\x00"
    seeds["oversize"] = b"\x01" * (P.LIMITS["MAX_FRAME"] + 8) + b"\x00" + frames[0]
    return seeds


def vector_request_seeds(vectors: dict) -> dict[str, bytes]:
    seeds = {}
    for i, f in enumerate(vectors["frames"]):
        payload = bytes.fromhex(f["payload"])
        if payload[:1] in (b"\x84", b"\x85") and payload[1:2] == b"\x00":   # [0, id, method, ...]
            seeds[f"vector-{i:02d}"] = records(0, [payload])
    seeds["vector-raw-stream"] = b"\x08" + b"".join(bytes.fromhex(f["frame"]) for f in vectors["frames"])
    return seeds


ADDR = bytes([1, 2, 3, 4, 5, 0xC6])
# Air event fields as bb_port_sim.c's deliver() reads them (README.md beside it).
AIR_EVENTS: dict[str, list] = {
    "CENTRAL_CONNECT": [CONN, 1, ADDR],
    "CENTRAL_DISCONNECT": [CONN, 1, ADDR, 0x13],
    "PERIPHERAL_CONNECT": [2, 0, ADDR],
    "PERIPHERAL_DISCONNECT": [0xFFFF, 0, ADDR, 0x08],
    "ADVERTISE_DONE": [0],
    "SCAN_RESULT": [1, ADDR, 0, -60, b"\x02\x01\x06\x05\x09fuzz"],
    "SCAN_DONE": [],
    "CONNECTION_UPDATE": [CONN, 24, 0, 400, 0],
    "GATTS_WRITE": [CONN, 12, b"hello", 0],
    "GATTS_INDICATE_DONE": [CONN, 15, 0],
    "MTU_EXCHANGED": [CONN, 185],
    "GATTC_SERVICE_RESULT": [CONN, 1, 5, b"\x0d\x18"],
    "GATTC_SERVICE_DONE": [CONN, 0],
    "GATTC_CHARACTERISTIC_RESULT": [CONN, 2, 3, 0x12, bytes(range(16))],
    "GATTC_CHARACTERISTIC_DONE": [CONN, 0],
    "GATTC_DESCRIPTOR_RESULT": [CONN, 4, b"\x02\x29"],
    "GATTC_DESCRIPTOR_DONE": [CONN, 0],
    "GATTC_READ_RESULT": [CONN, 3, b"\x01\x02"],
    "GATTC_READ_DONE": [CONN, 3, 0],
    "GATTC_WRITE_DONE": [CONN, 3, 0],
    "GATTC_NOTIFY": [CONN, 3, b"n"],
    "GATTC_INDICATE": [CONN, 3, b"i"],
    "L2CAP_CONNECT": [CONN, CID, 0x80, 512, 512],
    "L2CAP_DISCONNECT": [CONN, CID, 0x80, 0],
    "L2CAP_RECV": [CONN, CID, bytes(100)],
    "L2CAP_SEND_READY": [CONN, CID, 0],
    "ENCRYPTION_UPDATE": [CONN, True, False, True, 16],
    "PASSKEY_ACTION": [CONN, 3, 123456],
    "GATTS_READ_REQUEST": [77, CONN, 12],
    "L2CAP_ACCEPT": [78, CONN, CID, 0x80, 512, 512],
    "GET_SECRET": [79, 1, 0, b"key"],
    "SET_SECRET": [80, 1, b"key", b"value"],
}


def air_seeds() -> dict[str, bytes]:
    seeds = {}
    for name, fields in AIR_EVENTS.items():
        seeds[f"event-{name}"] = records(0x01, [cbor2.dumps([P.MSG_EVT, name, *fields])])
    every = [cbor2.dumps([P.MSG_EVT, name, *fields]) for name, fields in AIR_EVENTS.items()]
    seeds["events-all"] = records(0x01, every)
    seeds["events-all-each-delivered"] = records(0x11, every)
    seeds["response-unawaited"] = records(0, [cbor2.dumps([1, 5, 0, [1, ADDR]])])
    # fuzz_sim_air.c flags bit 5: the air's side of each port call that decodes a result (id 1).
    answers = {
        "addr": [1, ADDR],
        "register": [[10, [[11, 12, 13, [14]], [15, 16, 0, []]]]],
        "sec": [True, False, True, 16],
        "int": 1,
    }
    for name, result in answers.items():
        seeds[f"answer-{name}"] = records(0x20, [cbor2.dumps([2, "SCAN_DONE"]),
                                                 cbor2.dumps([1, 1, 0, result])])
    seeds["answer-error"] = records(0x20, [cbor2.dumps([1, 1, -5, None])])
    seeds["raw-stream"] = b"\x09" + b"".join(encode_frame(p) for p in every[:4])
    return seeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="directory for <harness>/ seed dirs")
    args = ap.parse_args()
    vectors = json.loads(VECTORS.read_text())
    sets = {
        "fuzz_frame": frame_seeds(vectors),
        "fuzz_request": {**method_seeds(), **vector_request_seeds(vectors)},
        "fuzz_sim_air": air_seeds(),
    }
    for harness, seeds in sets.items():
        d = args.out / harness
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for name, data in seeds.items():
            (d / name).write_bytes(data)
        regressions = HERE / "regressions" / harness
        kept = sorted(regressions.glob("*")) if regressions.is_dir() else []
        for f in kept:
            shutil.copy(f, d / f"regression-{f.name}")
        print(f"{harness}: {len(seeds)} seeds, {len(kept)} regression inputs -> {d}")


if __name__ == "__main__":
    main()
