"""`blebridge bench`: RPC round-trip latency and board->host event throughput.

(a) Round trip: p50/p99 of ``echo`` with a 20-byte payload through the full client
    (``board.call``: request encoding, write, and on local ports the calling thread reading
    the response itself; see blebridge.rpc), against raw baselines measured in the same run:
    - link echo (pseudo-terminal ports: sim boards, the fake board): the same request frame
      written to a second pseudo-terminal whose far end is a tiny child process that writes
      every byte back; the host reads it back synchronously on one thread. This is the cost
      of the link itself; the target is RPC p50 <= 1.5 x link echo p50. RPC and link echo
      are measured in alternating blocks, so the ratio compares the same machine load.
      The echo child answers faster than any firmware does (it does nothing else), so even
      the raw frame round trip below is above link echo.
    - raw frame round trip (every port, and the baseline for real boards, where no second link
      of the same kind exists): the same request frame written to the board's own port and its
      response read synchronously on one thread, before the client's threads start. Link and
      firmware are the same as for the RPC figure, so the ratio is the client's own overhead.
(b) Events: ``bench_events(count, len)`` makes the board send BENCH events as fast as the link
    drains; a Python listener counts them (and checks their sequence). Printed as events/s and
    MB/s of payload for 20 and 244 byte payloads beside the USB full-speed line rate and the
    targets (>= 50,000 events/s at 20 B, >= 6 MB/s at 244 B; only reachable on a sim board:
    a real board is capped by USB full speed).
"""
from __future__ import annotations

import argparse
import json
import os
import select
import stat
import subprocess
import sys
import threading
import time
import tty
from typing import Any, Callable, Optional

import cbor2

from . import protocol as P
from .errors import CallTimeout
from .framing import FrameDecoder
from .rpc import Board, Event
from .transport.reader import make_reader
from .wire import encode_request
from .transport import open_transport

#: USB full speed: 12 Mbit/s on the wire, about 1.2 MB/s of CDC payload in practice.
USB_FS_LINE_RATE_MBPS = 1.2
TARGET_RATIO = 1.5
TARGET_EVENTS_20B = 50_000
TARGET_MBPS_244B = 6.0
ECHO_PAYLOAD_LEN = 20
EVENT_PAYLOAD_LENS = (20, 244)
#: A bench run fails when no event arrives for this long (s).
STALL_TIMEOUT_S = 5.0
_WARMUP = 50
#: RPC and link-echo round trips alternate in blocks of this many (plus a few unrecorded).
ECHO_BLOCK = 200
_BLOCK_WARMUP = 5
#: A baseline round trip with no answer by then fails the run (s).
ROUND_TRIP_TIMEOUT_S = 5.0

# The child of the link-echo baseline: write back every byte read from fd 0. Kept minimal so
# the baseline measures the link, not the echoer.
_ECHO_CHILD = (
    "import os\n"
    "while True:\n"
    "    d = os.read(0, 65536)\n"
    "    if not d: break\n"
    "    os.write(0, d)\n"
)


def _percentile(sorted_s: list[float], q: float) -> float:
    if not sorted_s:
        return float("nan")
    i = min(len(sorted_s) - 1, max(0, round(q * (len(sorted_s) - 1))))
    return sorted_s[i]


def _summary_us(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"p50_us": _percentile(s, 0.50) * 1e6, "p99_us": _percentile(s, 0.99) * 1e6,
            "min_us": s[0] * 1e6 if s else float("nan"), "n": len(s)}


def is_pty(transport: Any) -> bool:
    """True when the transport is a local pseudo-terminal (sim boards, the fake board)."""
    inner = getattr(transport, "serial", transport)
    fd = getattr(inner, "fd", None)
    if not isinstance(fd, int):
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    # Unix98 pty slaves have major numbers 136..143.
    return stat.S_ISCHR(st.st_mode) and 136 <= os.major(st.st_rdev) <= 143


def _round_trip(write: Any, read: Any, frame: bytes, match: Any = None) -> float:
    """Write ``frame``, read until a frame comes back (one ``match(payload)`` accepts, if
    given); seconds taken."""
    dec = FrameDecoder()
    t0 = time.perf_counter()
    write(frame)
    while True:
        if time.perf_counter() - t0 > ROUND_TRIP_TIMEOUT_S:
            raise CallTimeout("echo (raw baseline)", ROUND_TRIP_TIMEOUT_S)
        data = read()
        if data:
            for payload in dec.feed(data):
                if match is None or match(payload):
                    return time.perf_counter() - t0


class LinkEcho:
    """A pseudo-terminal whose far end is a child process writing every byte back."""

    def __init__(self) -> None:
        master, self._slave = os.openpty()
        tty.setraw(master)
        tty.setraw(self._slave)
        self._child = subprocess.Popen([sys.executable, "-c", _ECHO_CHILD], stdin=master, close_fds=True)
        os.close(master)

    def _read(self) -> bytes:
        select.select([self._slave], [], [], 1.0)
        return os.read(self._slave, 65536)

    def _write(self, b: bytes) -> None:
        os.write(self._slave, b)

    def round_trips(self, frame: bytes, count: int, warmup: int = 0) -> list[float]:
        """Seconds of each of ``count`` round trips of ``frame`` (after ``warmup`` unrecorded ones)."""
        samples = []
        for i in range(count + warmup):
            dt = _round_trip(self._write, self._read, frame)
            if i >= warmup:
                samples.append(dt)
        return samples

    def close(self) -> None:
        self._child.kill()
        self._child.wait()
        os.close(self._slave)


def raw_frame_baseline(transport: Any, count: int) -> dict[str, float]:
    """Round trips of an echo request written and read on one thread, no RPC client."""
    read = make_reader(transport, 1.0)
    transport.write(b"\x00")
    samples = []
    for i in range(count + _WARMUP):
        rid = i + 1
        frame = encode_request(rid, "echo", (bytes(ECHO_PAYLOAD_LEN),))

        def is_answer(payload: bytes) -> bool:   # skip events (BOOT...) sent meanwhile
            try:
                msg = cbor2.loads(payload)
            except Exception:
                return False
            return isinstance(msg, list) and len(msg) >= 2 and msg[0] == P.MSG_RSP and msg[1] == rid

        dt = _round_trip(transport.write, read, frame, is_answer)
        if i >= _WARMUP:
            samples.append(dt)
    return _summary_us(samples)


def _rpc_round_trips(board: Board, count: int, warmup: int = 0) -> list[float]:
    data = bytes(range(ECHO_PAYLOAD_LEN))
    samples = []
    for i in range(count + warmup):
        t0 = time.perf_counter()
        r = board.call("echo", data)
        dt = time.perf_counter() - t0
        if r != data:
            raise RuntimeError(f"echo returned {r!r}, sent {data!r}")
        if i >= warmup:
            samples.append(dt)
    return samples


def rpc_echo(board: Board, count: int) -> dict[str, float]:
    return _summary_us(_rpc_round_trips(board, count, _WARMUP))


def rpc_and_link_echo(board: Board, count: int) -> tuple[dict[str, float], dict[str, float]]:
    """RPC round trips and link-echo round trips measured in alternating blocks of
    ECHO_BLOCK, so both figures see the same machine load (other processes come and go
    within seconds; two phases measured one after the other can differ by 2x)."""
    frame = encode_request(1, "echo", (bytes(ECHO_PAYLOAD_LEN),))
    link = LinkEcho()
    try:
        _rpc_round_trips(board, 0, _WARMUP)
        link.round_trips(frame, 0, _WARMUP)
        rpc: list[float] = []
        echo: list[float] = []
        while len(rpc) < count:
            n = min(ECHO_BLOCK, count - len(rpc))
            rpc += _rpc_round_trips(board, n, _BLOCK_WARMUP)
            echo += link.round_trips(frame, n, _BLOCK_WARMUP)
    finally:
        link.close()
    return _summary_us(rpc), _summary_us(echo)


def event_throughput(board: Board, count: int, payload_len: int) -> dict[str, Any]:
    """Time from the bench_events call to the last BENCH event reaching a Python listener."""
    state: dict[str, Any] = {"n": 0, "next_seq": 0, "out_of_order": 0, "bytes": 0, "last": 0.0}
    done = threading.Event()
    bench_code = P.EV_BENCH

    def listener(ev: Event) -> None:
        if ev.code != bench_code:
            return
        seq, payload = ev.fields
        if seq != state["next_seq"]:
            state["out_of_order"] += 1
        state["next_seq"] = seq + 1
        state["bytes"] += len(payload)
        state["n"] += 1
        if state["n"] >= count:
            state["last"] = time.perf_counter()
            done.set()

    board.add_event_listener(listener)
    try:
        t0 = time.perf_counter()
        board.call("bench_events", count, payload_len)
        seen = -1
        while not done.wait(STALL_TIMEOUT_S):
            if state["n"] == seen:
                break                       # stalled: report what arrived
            seen = state["n"]
        end = state["last"] if done.is_set() else time.perf_counter()
    finally:
        board.remove_event_listener(listener)
    dt = end - t0
    n = state["n"]
    return {"payload_len": payload_len, "count": count, "received": n, "complete": n >= count,
            "out_of_order": state["out_of_order"], "seconds": dt,
            "events_per_s": n / dt if dt > 0 else 0.0,
            "mb_per_s": state["bytes"] / dt / 1e6 if dt > 0 else 0.0}


def run_bench(spec: str, count: Optional[int] = None, echo_count: int = 2000,
              timeout: float = 30.0, progress: Callable[[str], None] = lambda _text: None) -> dict[str, Any]:
    """Run the whole benchmark on the board at ``spec``; returns the figures. ``progress`` gets
    one line per figure as soon as it is measured (the report comes at the end)."""
    count = count or 100_000
    transport = open_transport(spec)
    result: dict[str, Any] = {"port": spec}
    try:
        result["raw_frame"] = raw_frame_baseline(transport, echo_count)
        progress(f"raw frame round trip on this port: p50 {result['raw_frame']['p50_us']:.1f} µs")
        pty = is_pty(transport)
    except BaseException:
        transport.close()
        raise
    board = Board(transport, spec=spec, timeout=timeout)
    try:
        info = board.handshake()
        result["board"] = {"board": info.board, "port": info.port, "fw_version": info.fw_version,
                           "proto": list(info.proto)}
        if pty:
            result["rpc_echo"], result["link_echo"] = rpc_and_link_echo(board, echo_count)
            base_name = "link_echo"
            progress(f"link echo round trip: p50 {result['link_echo']['p50_us']:.1f} µs")
        else:
            result["rpc_echo"] = rpc_echo(board, echo_count)
            base_name = "raw_frame"
        result["baseline"] = base_name
        progress(f"RPC round trip (board.call): p50 {result['rpc_echo']['p50_us']:.1f} µs")
        result["ratio_p50"] = result["rpc_echo"]["p50_us"] / result[base_name]["p50_us"]
        result["ratio_target"] = TARGET_RATIO
        result["events"] = []
        for n in EVENT_PAYLOAD_LENS:
            e = event_throughput(board, count, n)
            result["events"].append(e)
            progress(f"events, {n} B payload: {e['events_per_s']:,.0f} /s ({e['mb_per_s']:.2f} MB/s)")
        result["host_counters"] = board.host_counters()
    finally:
        board.close()
    ev20 = next(e for e in result["events"] if e["payload_len"] == 20)
    ev244 = next(e for e in result["events"] if e["payload_len"] == 244)
    result["targets"] = {
        "rpc_p50_ratio": {"target": TARGET_RATIO, "value": result["ratio_p50"],
                          "met": result["ratio_p50"] <= TARGET_RATIO},
        "events_20B_per_s": {"target": TARGET_EVENTS_20B, "value": ev20["events_per_s"],
                             "met": ev20["complete"] and ev20["events_per_s"] >= TARGET_EVENTS_20B},
        "mb_per_s_244B": {"target": TARGET_MBPS_244B, "value": ev244["mb_per_s"],
                          "met": ev244["complete"] and ev244["mb_per_s"] >= TARGET_MBPS_244B},
    }
    result["usb_fs_line_rate_mb_per_s"] = USB_FS_LINE_RATE_MBPS
    return result


def format_report(r: dict[str, Any]) -> str:
    b = r.get("board", {})
    lines = [f"blebridge bench on {r['port']} (board {b.get('board', '?')}, port {b.get('port', '?')}, "
             f"firmware {b.get('fw_version', '?')})", ""]
    lines.append(f"Round trip, echo of {ECHO_PAYLOAD_LEN} B          p50 µs    p99 µs      n")
    rows = [("RPC client (board.call)", r["rpc_echo"])]
    if "link_echo" in r:
        rows.append(("link echo (pty + child process)", r["link_echo"]))
    rows.append(("raw frame on this port, 1 thread", r["raw_frame"]))
    for name, s in rows:
        lines.append(f"  {name:<34}{s['p50_us']:>8.1f}  {s['p99_us']:>8.1f}  {s['n']:>5}")
    t = r["targets"]["rpc_p50_ratio"]
    lines.append(f"  ratio RPC / {r['baseline'].replace('_', ' ')} p50: {t['value']:.2f}x  "
                 f"(target <= {t['target']}x: {'met' if t['met'] else 'NOT met'})")
    if "link_echo" in r:
        lines.append(f"  ratio RPC / raw frame p50: {r['rpc_echo']['p50_us'] / r['raw_frame']['p50_us']:.2f}x  "
                     "(the client's own cost; raw is measured before the client starts)")
    lines.append("")
    lines.append("Events board -> Python listener     events/s      MB/s   received   in order")
    for e in r["events"]:
        lines.append(f"  BENCH, {e['payload_len']:>3} B payload              {e['events_per_s']:>10,.0f}  "
                     f"{e['mb_per_s']:>8.2f}  {e['received']:>9,}   {'yes' if e['out_of_order'] == 0 else 'NO'}")
    lines.append(f"  USB full-speed line rate                      {USB_FS_LINE_RATE_MBPS:>8.2f}")
    t20 = r["targets"]["events_20B_per_s"]
    t244 = r["targets"]["mb_per_s_244B"]
    lines.append(f"  target >= {t20['target']:,} events/s at 20 B: {'met' if t20['met'] else 'NOT met'}; "
                 f"target >= {t244['target']} MB/s at 244 B: {'met' if t244['met'] else 'NOT met'}")
    hc = r.get("host_counters", {})
    if hc.get("crc_errors") or hc.get("garbage_bytes") or hc.get("bad_messages"):
        lines.append(f"  host framing errors: crc {hc['crc_errors']}, garbage bytes {hc['garbage_bytes']}, "
                     f"bad messages {hc['bad_messages']}")
    return "\n".join(lines)


def add_parser(subparsers: Any, port_help: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help="measure RPC latency and event throughput",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--port", "-p", help=port_help)
    p.add_argument("--count", "-n", type=int, default=100_000, help="events per throughput run (default 100000)")
    p.add_argument("--echo-count", type=int, default=2000, help="round trips per latency run (default 2000)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return p


def main(args: argparse.Namespace, port: str) -> int:
    def progress(text: str) -> None:
        if not args.json:
            print(f"  measured: {text}", flush=True)

    r = run_bench(port, count=args.count, echo_count=args.echo_count, progress=progress)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(format_report(r), flush=True)
    return 0
