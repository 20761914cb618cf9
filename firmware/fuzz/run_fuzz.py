#!/usr/bin/env python3
"""Run each libFuzzer harness for a fixed time and print what it did (``make fuzz``).

For harness H: build/fuzz/bin/H, corpus build/fuzz/corpus/H (kept between runs, grows) plus
the seeds in build/fuzz/seeds/H, crash/leak/timeout inputs to build/fuzz/artifacts/H/, full
output in build/fuzz/logs/H.log. Printed per harness: executions, coverage (libFuzzer's cov =
instrumented edges reached, out of the edges in the binary; ft = features), corpus size, crashes.
Exits 1 when any harness crashed or reported a sanitizer error (libFuzzer stops at the first).
Standard library only.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

# Per-input limits: an input running longer than this (s) or growing past this RSS (MB) is a
# finding, like a crash. Inputs are at most MAX_LEN bytes (a few requests or air messages).
TIMEOUT_S = 20
RSS_LIMIT_MB = 2048
MAX_LEN = 4096

STATS_RE = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)(?: corp: (\d+)/)?", re.M)
EDGES_RE = re.compile(r"INFO: Loaded \d+ modules?\s+\((\d+) inline 8-bit counters\)")
EXECS_RE = re.compile(r"^stat::number_of_executed_units:\s*(\d+)", re.M)
FINDING_RE = re.compile(r"^(==\d+==ERROR: \w+Sanitizer.*|.*runtime error:.*|==\d+== ERROR: libFuzzer.*)$",
                        re.M)


def run_one(fuzz_dir: Path, harness: str, seconds: int) -> dict:
    binary = fuzz_dir / "bin" / harness
    corpus = fuzz_dir / "corpus" / harness
    seeds = fuzz_dir / "seeds" / harness
    artifacts = fuzz_dir / "artifacts" / harness
    log = fuzz_dir / "logs" / f"{harness}.log"
    for d in (corpus, seeds, artifacts, log.parent):
        d.mkdir(parents=True, exist_ok=True)
    before = set(artifacts.iterdir())
    cmd = [str(binary), f"-max_total_time={seconds}", "-print_final_stats=1",
           f"-artifact_prefix={artifacts}/", f"-timeout={TIMEOUT_S}",
           f"-rss_limit_mb={RSS_LIMIT_MB}", f"-max_len={MAX_LEN}",
           # the sim port reports bad air events on stderr: keep libFuzzer's own output only
           "-close_fd_mask=2" if harness == "fuzz_sim_air" else "-close_fd_mask=0",
           str(corpus), str(seeds)]
    with log.open("w") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    text = log.read_text(errors="replace")
    stats = STATS_RE.findall(text)
    execs = EXECS_RE.search(text)
    edges = EDGES_RE.search(text)
    new = sorted(set(artifacts.iterdir()) - before)
    return {
        "harness": harness,
        "rc": rc,
        "execs": int(execs.group(1)) if execs else (int(stats[-1][0]) if stats else 0),
        "cov": int(stats[-1][1]) if stats else 0,
        "ft": int(stats[-1][2]) if stats else 0,
        "corpus": int(stats[-1][3]) if stats and stats[-1][3] else 0,
        "edges": int(edges.group(1)) if edges else 0,
        "crashes": len(new) if new else (1 if rc != 0 else 0),
        "artifacts": new,
        "findings": FINDING_RE.findall(text)[:5],
        "log": log,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, required=True, help="build/fuzz")
    ap.add_argument("--seconds", type=int, default=60, help="run time per harness (s)")
    ap.add_argument("harnesses", nargs="+")
    args = ap.parse_args()
    results = []
    for h in args.harnesses:
        print(f"fuzzing {h} for {args.seconds} s ...", flush=True)
        results.append(run_one(args.dir, h, args.seconds))
    print(f"\n{'harness':<14} {'executions':>11} {'exec/s':>7} {'cov (edges)':>16} {'ft':>6} "
          f"{'corpus':>7} {'crashes':>7}")
    for r in results:
        cov = f"{r['cov']}/{r['edges']}" if r["edges"] else str(r["cov"])
        print(f"{r['harness']:<14} {r['execs']:>11} {r['execs'] // max(args.seconds, 1):>7} "
              f"{cov:>16} {r['ft']:>6} {r['corpus']:>7} {r['crashes']:>7}")
    failed = [r for r in results if r["crashes"]]
    for r in failed:
        print(f"\n{r['harness']}: exit {r['rc']}, log {r['log']}")
        for line in r["findings"]:
            print(f"  {line}")
        for a in r["artifacts"]:
            print(f"  reproducer: {a}  (run: {args.dir / 'bin' / r['harness']} {a})")
    print(f"fuzz: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
