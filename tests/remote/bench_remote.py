"""`blebridge bench` over every remote kind, in front of one simulated board (README "Remote boards").

    python tests/remote/bench_remote.py [--count N] [--echo-count N] [--kinds K,...] [--json]
    python tests/remote/bench_remote.py --client-decode
    python tests/remote/bench_remote.py --pyserial-client --kinds rfc2217-ser2net --count 5000

Starts a simulated board on a private air, then for each kind runs blebridge.bench.run_bench
on the board's pseudo-terminal directly (``pty``) and through each server of
tests/remote/servers.py (ser2net, socat, pyserial's RFC 2217 server), one after the other, and
prints one table. Needs ser2net and socat (Debian packages) for their rows.

``--client-decode`` measures only the RFC 2217 clients' receive paths, pyserial's
``rfc2217.Serial`` and blebridge's ``RFC2217Serial``, on one thread, no network: a 4 MB Telnet
stream (every byte value, IAC doubled) served by a fake socket in recv-sized chunks is decoded
by the client's receive loop, then read out as the RPC reader reads it.

``--pyserial-client`` opens rfc2217:// with pyserial's own ``rfc2217.Serial`` instead of
blebridge's, for the figure before blebridge had its own client.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "host"))
sys.path.insert(0, str(HERE))

from blebridge.bench import run_bench  # noqa: E402
from blebridge.sim import launcher  # noqa: E402

import servers  # noqa: E402

ALL_KINDS = ("pty",) + servers.KINDS


def bench_kind(kind: str, pty: str, count: int, echo_count: int, ser2net_options: dict) -> dict:
    if kind == "pty":
        return run_bench(pty, count=count, echo_count=echo_count)
    with servers.start(kind, pty, ser2net_options=ser2net_options) as server:
        return run_bench(server.url, count=count, echo_count=echo_count)


class _FakeSocket:
    """Serves ``data`` in chunks of at most ``chunk`` bytes, then end of stream."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data, self.pos, self.chunk = data, 0, chunk

    def _next(self, n: int) -> bytes:
        d = self.data[self.pos:self.pos + min(n, self.chunk)]
        self.pos += len(d)
        return d

    def recv(self, n: int) -> bytes:
        return self._next(n)

    def recv_into(self, buf: bytearray) -> int:
        d = self._next(len(buf))
        buf[:len(d)] = d
        return len(d)


class _Alive:
    def is_alive(self) -> bool:
        return True


def client_decode(total: int = 4_000_000) -> list[dict]:
    """MB/s of each RFC 2217 client's receive loop and read path (see the module doc)."""
    import queue

    from serial import rfc2217

    from blebridge.transport.rfc2217 import RFC2217Serial

    raw = bytes(i % 256 for i in range(65536)) * (total // 65536)
    wire = raw.replace(b"\xff", b"\xff\xff")
    rows = []
    # pyserial receives 1024 B per recv (fixed); blebridge up to 64 KiB.
    for name, cls, chunk in (("pyserial rfc2217.Serial", rfc2217.Serial, 1024),
                             ("blebridge RFC2217Serial", RFC2217Serial, 1024),
                             ("blebridge RFC2217Serial", RFC2217Serial, 65536)):
        s = cls(None)
        s.is_open = True
        s._socket = _FakeSocket(wire, chunk)
        s._read_buffer = queue.Queue()
        s._telnet_options = []
        s._thread = _Alive()
        s._timeout = 0
        t0 = time.perf_counter()
        s._telnet_read_loop()
        t1 = time.perf_counter()
        got = 0
        if isinstance(s, RFC2217Serial):
            while s.in_waiting:
                got += len(s.read_chunk(0))
        else:
            while s._read_buffer.qsize():
                got += len(s.read(s.in_waiting or 1))
        t2 = time.perf_counter()
        assert got == len(raw), (got, len(raw))
        rows.append({"client": name, "recv_bytes": chunk, "decode_mb_per_s": len(raw) / (t1 - t0) / 1e6,
                     "read_mb_per_s": len(raw) / (t2 - t1) / 1e6, "both_mb_per_s": len(raw) / (t2 - t0) / 1e6})
        r = rows[-1]
        print(f"{name:<24} recv {chunk:>5} B: receive loop {r['decode_mb_per_s']:8.2f} MB/s, "
              f"read {r['read_mb_per_s']:8.2f} MB/s, both {r['both_mb_per_s']:8.2f} MB/s", flush=True)
    return rows


def use_pyserial_client() -> None:
    """rfc2217:// opens with pyserial's own client from here on (the "before" figure): the
    RPC reader then reads it through read(), as any pyserial port."""
    from serial import rfc2217

    import blebridge.transport.rfc2217 as ours

    class PyserialClient(rfc2217.Serial):
        def from_url(self, url: str):  # type: ignore[no-untyped-def]
            addr = super().from_url(url)
            self._ignore_set_control_answer = True   # ser2net on a pty (see servers.ser2net)
            return addr

    ours.RFC2217Serial = PyserialClient  # type: ignore[misc]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=50_000, help="events per throughput run")
    ap.add_argument("--echo-count", type=int, default=1000, help="round trips per latency run")
    ap.add_argument("--kinds", default=",".join(ALL_KINDS), help=f"comma-separated, of {ALL_KINDS}")
    ap.add_argument("--ser2net-option", action="append", default=[], metavar="KEY=VALUE",
                    help="a ser2net connection option (man ser2net.yaml), e.g. chardelay=true "
                         "(servers.py turns it off) or dev-to-net-bufsize=65536; repeatable")
    ap.add_argument("--client-decode", action="store_true",
                    help="measure only the RFC 2217 clients' receive paths (no board, no network)")
    ap.add_argument("--pyserial-client", action="store_true",
                    help="open rfc2217:// with pyserial's own client (what blebridge used before)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.pyserial_client:
        use_pyserial_client()
    if args.client_decode:
        rows = client_decode()
        if args.json:
            print(json.dumps(rows, indent=2))
        return 0
    kinds = [k for k in args.kinds.split(",") if k]
    ser2net_options = dict(opt.split("=", 1) for opt in args.ser2net_option)
    air_dir = tempfile.mkdtemp(prefix="bb-bench-")
    air = os.path.join(air_dir, "air.sock")
    board = launcher.start_board("bench-remote", air=air)
    results = {}
    try:
        for kind in kinds:
            why = servers.missing_tool(kind)
            if why:
                print(f"{kind}: skipped, {why}", file=sys.stderr)
                continue
            results[kind] = bench_kind(kind, board.pty, args.count, args.echo_count, ser2net_options)
            r = results[kind]
            e = {x["payload_len"]: x for x in r["events"]}
            print(f"{kind:<18} echo p50 {r['rpc_echo']['p50_us']:>8.0f} µs  "
                  f"20 B {e[20]['events_per_s']:>9,.0f} ev/s {e[20]['mb_per_s']:5.2f} MB/s  "
                  f"244 B {e[244]['events_per_s']:>8,.0f} ev/s {e[244]['mb_per_s']:5.2f} MB/s"
                  f"{'' if all(x['complete'] for x in r['events']) else '  INCOMPLETE'}", flush=True)
    finally:
        board.stop()
        launcher.stop_all(air)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
