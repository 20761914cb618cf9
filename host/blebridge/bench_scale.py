"""Many boards, one host: N simulated boards streaming events into one Python process at once.

    python -m blebridge.bench_scale [--boards 1 2 4 8] [--seconds 2] [--repeats 3] [--json]

For each N, boards ``sim:scale-1`` … ``sim:scale-N`` (started once, on the default air) each
stream BENCH events of PAYLOAD_LEN bytes (``bench_events``, a count that outlasts the window,
see COUNT_MARGIN) to a listener in this process; after WARMUP_S, each board's listener count is
sampled at the start and end of a window of ``--seconds``: its rate is the difference over the
window. The next run starts once every board has delivered all its events.

Reported per N: the aggregate events/s (sum over boards), its ratio to the single-board rate of
the same repeat, and each board's share of the aggregate and its rate over the mean rate.
Targets: aggregate at the largest N ≥ TARGET_AGGREGATE_RATIO × the single-board rate, and no
board below TARGET_MIN_SHARE × the mean. Repeats interleave (1, 2, 4, 8, 1, 2, …) so a burst of
load on the machine affects every N alike; the median of the repeats is reported.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from typing import Any, Callable, Optional

from . import protocol as P
from .rpc import Board, Event, open_board

PAYLOAD_LEN = 20
#: Streaming before the window opens: every board under way, pipes full (s).
WARMUP_S = 0.5
DEFAULT_SECONDS = 2.0
DEFAULT_REPEATS = 3
DEFAULT_BOARDS = (1, 2, 4, 8)
#: A stream cannot be stopped (bench_events answers EBUSY while one runs): each board is sent
#: enough events to outlast warm-up and window at its expected rate (the single-board rate
#: shared by N) times this margin. A board that still ends before the window closes makes the
#: run count again with twice as many, up to SHORT_RETRIES times.
COUNT_MARGIN = 1.4
SHORT_RETRIES = 3
#: Events of the calibration stream that gives the first expected rate.
CALIBRATION_EVENTS = 20_000
#: A run fails when no board delivers an event for this long (s).
STALL_TIMEOUT_S = 10.0
TARGET_AGGREGATE_RATIO = 0.70
TARGET_MIN_SHARE = 0.5


class _Counter:
    """BENCH events reaching one board's listener (the dispatcher thread is the only writer)."""

    def __init__(self) -> None:
        self.n = 0
        self.out_of_order = 0
        self._next_seq = 0

    def __call__(self, ev: Event) -> None:
        if ev.code != P.EV_BENCH:
            return
        seq = ev.fields[0]
        if seq != self._next_seq:
            self.out_of_order += 1
        self._next_seq = seq + 1
        self.n += 1

    def restart(self) -> None:
        """A new stream begins: its sequence numbers start at 0, the count at 0."""
        self._next_seq = 0
        self.n = 0


class ShortRun(Exception):
    """A board sent all its events before the window closed."""


def _stream(boards: list[Board], counters: list[_Counter], count: int,
            seconds: float) -> list[float]:
    """Events/s of each board over one window while all of them stream ``count`` events."""
    for c in counters:
        c.restart()
    for b in boards:
        b.call("bench_events", count, PAYLOAD_LEN)
    time.sleep(WARMUP_S)
    start = [c.n for c in counters]
    t0 = time.monotonic()
    time.sleep(seconds)
    end = [c.n for c in counters]
    dt = time.monotonic() - t0
    _wait_all(counters, count)
    if any(e >= count for e in end):
        raise ShortRun()
    return [(e - s) / dt for s, e in zip(start, end)]


def _wait_all(counters: list[_Counter], count: int) -> None:
    """Until every board has delivered ``count`` events (a stream cannot be cut short)."""
    seen, since = -1, time.monotonic()
    while True:
        total = sum(c.n for c in counters)
        if all(c.n >= count for c in counters):
            return
        now = time.monotonic()
        if total != seen:
            seen, since = total, now
        elif now - since > STALL_TIMEOUT_S:
            raise TimeoutError(f"no BENCH event for {STALL_TIMEOUT_S:.0f} s "
                               f"({total} of {count * len(counters)} arrived)")
        time.sleep(0.05)


def _calibrate(board: Board, counter: _Counter) -> float:
    """Single-board events/s of a short stream: the first guess of the expected rates."""
    counter.restart()
    t0 = time.monotonic()
    board.call("bench_events", CALIBRATION_EVENTS, PAYLOAD_LEN)
    _wait_all([counter], CALIBRATION_EVENTS)
    return CALIBRATION_EVENTS / (time.monotonic() - t0)


def _run(boards: list[Board], counters: list[_Counter], single_rate: float,
         seconds: float) -> list[float]:
    count = int(single_rate * (WARMUP_S + seconds) * COUNT_MARGIN / len(boards)) + 1
    for attempt in range(SHORT_RETRIES + 1):
        try:
            return _stream(boards, counters, count, seconds)
        except ShortRun:
            if attempt == SHORT_RETRIES:
                raise RuntimeError(f"boards still ended before the window closed with "
                                   f"{count} events each") from None
            count *= 2
    raise AssertionError("unreachable")


def measure(counts: tuple[int, ...], seconds: float, repeats: int,
            progress: Callable[[str], None], air: Optional[str] = None) -> dict[str, Any]:
    """Open max(counts) sim boards, run every N ``repeats`` times; the figures as a dict."""
    suffix = f"?air={air}" if air else ""
    boards: list[Board] = []
    try:
        for i in range(max(counts)):
            boards.append(open_board(f"sim:scale-{i + 1}{suffix}"))
        counters = [_Counter() for _ in boards]
        for b, c in zip(boards, counters):
            b.add_event_listener(c)
        runs: dict[int, list[list[float]]] = {n: [] for n in counts}
        single_rate = _calibrate(boards[0], counters[0])
        for r in range(repeats):
            for n in counts:
                rates = _run(boards[:n], counters[:n], single_rate, seconds)
                if n == 1:
                    single_rate = rates[0]
                runs[n].append(rates)
                progress(f"repeat {r + 1}/{repeats}: {n} board{'s' if n > 1 else ''}: "
                         f"{sum(rates):,.0f} events/s")
        out_of_order = sum(c.out_of_order for c in counters)
    finally:
        for b in boards:
            b.close()
    return _figures(runs, seconds, repeats, out_of_order)


def _figures(runs: dict[int, list[list[float]]], seconds: float, repeats: int,
             out_of_order: int) -> dict[str, Any]:
    counts = sorted(runs)
    single = runs[counts[0]]
    rows = []
    for n in counts:
        aggregates = [sum(r) for r in runs[n]]
        # Ratio to the single-board rate of the same repeat: both saw the same machine load.
        ratios = [sum(r) / sum(s) if sum(s) > 0 else 0.0 for r, s in zip(runs[n], single)]
        median_i = sorted(range(len(aggregates)), key=aggregates.__getitem__)[len(aggregates) // 2]
        rates = runs[n][median_i]
        mean = statistics.fmean(rates)
        rows.append({
            "boards": n,
            "aggregate_events_per_s": statistics.median(aggregates),
            "ratio_to_single": statistics.median(ratios),
            "runs_aggregate": aggregates,
            # Of the median repeat: each board's events/s, its share, its rate over the mean.
            "board_events_per_s": rates,
            "board_share": [x / sum(rates) if sum(rates) > 0 else 0.0 for x in rates],
            "min_over_mean": min(rates) / mean if mean > 0 else 0.0,
        })
    top = rows[-1]
    return {
        "payload_len": PAYLOAD_LEN, "seconds": seconds, "repeats": repeats,
        "out_of_order": out_of_order, "rows": rows,
        "targets": {
            "aggregate_ratio": {"boards": top["boards"], "target": TARGET_AGGREGATE_RATIO,
                                "value": top["ratio_to_single"],
                                "met": top["ratio_to_single"] >= TARGET_AGGREGATE_RATIO},
            "min_share": {"target": TARGET_MIN_SHARE,
                          "value": min(r["min_over_mean"] for r in rows),
                          "met": all(r["min_over_mean"] >= TARGET_MIN_SHARE for r in rows)},
        },
    }


def format_report(fig: dict[str, Any]) -> str:
    lines = [f"Boards streaming BENCH events ({fig['payload_len']} B) into one process; "
             f"median of {fig['repeats']} windows of {fig['seconds']:g} s",
             "boards   aggregate ev/s   vs 1 board   min/mean   each board's share"]
    for r in fig["rows"]:
        shares = " ".join(f"{s * 100:.0f}%" for s in r["board_share"])
        lines.append(f"{r['boards']:>6}   {r['aggregate_events_per_s']:>14,.0f}   "
                     f"{r['ratio_to_single']:>10.2f}   {r['min_over_mean']:>8.2f}   {shares}")
    t = fig["targets"]
    a, m = t["aggregate_ratio"], t["min_share"]
    lines.append(f"target: {a['boards']} boards >= {a['target']:.0%} of one board's rate: "
                 f"{a['value']:.2f} ({'met' if a['met'] else 'NOT met'}); every board >= "
                 f"{m['target']:.0%} of the mean: lowest {m['value']:.2f} "
                 f"({'met' if m['met'] else 'NOT met'})")
    if fig["out_of_order"]:
        lines.append(f"OUT OF ORDER: {fig['out_of_order']} events")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blebridge.bench_scale",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", type=int, nargs="+", default=list(DEFAULT_BOARDS),
                        metavar="N", help="board counts to run (default 1 2 4 8)")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help=f"measuring window per run (default {DEFAULT_SECONDS:g})")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help=f"runs of every N, median reported (default {DEFAULT_REPEATS})")
    parser.add_argument("--air", help="air socket (default: BLEBRIDGE_AIR or the user's air)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    ns = parser.parse_args(argv)
    counts = tuple(sorted(set(ns.boards)))
    if counts[0] < 1 or ns.seconds <= 0 or ns.repeats < 1:
        parser.error("--boards, --seconds and --repeats must be positive")

    def progress(text: str) -> None:
        if not ns.json:
            print(text, flush=True)

    fig = measure(counts, ns.seconds, ns.repeats, progress, ns.air)
    print(json.dumps(fig, indent=2) if ns.json else format_report(fig))
    return 0 if fig["out_of_order"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
