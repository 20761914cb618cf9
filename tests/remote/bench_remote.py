"""`blebridge bench` over every remote kind, in front of one simulated board (README "Remote boards").

    python tests/remote/bench_remote.py [--count N] [--echo-count N] [--kinds K,...] [--json]

Starts a simulated board on a private air, then for each kind runs blebridge.bench.run_bench
on the board's pseudo-terminal directly (``pty``) and through each server of
tests/remote/servers.py (ser2net, socat, pyserial's RFC 2217 server), one after the other, and
prints one table. Needs ser2net and socat (Debian packages) for their rows.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "host"))
sys.path.insert(0, str(HERE))

from blebridge.bench import run_bench  # noqa: E402
from blebridge.sim import launcher  # noqa: E402

import servers  # noqa: E402

ALL_KINDS = ("pty",) + servers.KINDS


def bench_kind(kind: str, pty: str, count: int, echo_count: int) -> dict:
    if kind == "pty":
        return run_bench(pty, count=count, echo_count=echo_count)
    with servers.start(kind, pty) as server:
        return run_bench(server.url, count=count, echo_count=echo_count)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=50_000, help="events per throughput run")
    ap.add_argument("--echo-count", type=int, default=1000, help="round trips per latency run")
    ap.add_argument("--kinds", default=",".join(ALL_KINDS), help=f"comma-separated, of {ALL_KINDS}")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
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
            results[kind] = bench_kind(kind, board.pty, args.count, args.echo_count)
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
