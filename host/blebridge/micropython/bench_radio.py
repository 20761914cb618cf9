"""Board-to-board throughput on the simulated radio, beside what the radio allows.

    python -m blebridge.micropython.bench_radio [--phy 1M 2M] [--interval 7.5 50]
                                                [--count 500] [--writes 20] [--json]

Two simulated boards, driven through the MicroPython ``bluetooth`` API from this process, on
an air of their own with real link-layer timing (blebridge.sim.linklayer), one air per PHY
(``--phy`` of the air: the central's stack asks for that PHY once connected). For every PHY and
connection interval: ATT MTU 247 (both sides ask), data length 251 (negotiated by the
controllers), then

- GATT notify, peripheral -> central, and GATT write without response, central -> peripheral:
  ``count`` packets of ATT MTU - 3 = 244 bytes sent as fast as the API allows; the rate is
  the payload from the first packet received to the last (the steady state, as a radio's
  throughput table gives it);
- the round trip of a write with response: ``writes`` writes one after the other, from the
  call to _IRQ_GATTC_WRITE_DONE, median (expect one to two connection intervals).

Each throughput is printed beside the physical figure for the same parameters, computed from
the Core specification's timing (:func:`spec_kbit_s`: how many packets of a full 251-octet
LL PDU, each answered by an empty PDU, T_IFS between, fit in one connection event), with the
ratio. Target: within +-10 %.

Exits 1 if a transfer did not deliver everything or a step failed, else 0.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any, Optional

from ..ble import advertising
from ..sim import linklayer
from ..sim.air import AirThread
from . import FLAG_NOTIFY, FLAG_READ, FLAG_WRITE, FLAG_WRITE_NO_RESPONSE
from .bench import _IRQ_CENTRAL_CONNECT, _IRQ_GATTC_NOTIFY, _IRQ_GATTS_WRITE, \
    _IRQ_MTU_EXCHANGED, _IRQ_PERIPHERAL_CONNECT, SVC, CHR, WRITE_RETRY_S, _Side
from . import runtime

_IRQ_GATTC_WRITE_DONE = 17

ATT_MTU = 247
#: LL payload of a full data PDU, octets: ATT MTU 247 + L2CAP header 4.
DATA_LENGTH = ATT_MTU + 4
#: Notify / write payload, bytes: ATT MTU less the ATT header (opcode 1 + handle 2).
PAYLOAD = ATT_MTU - 3
PHYS = ("1M", "2M")
INTERVALS_MS = (7.5, 50.0)
DEFAULT_COUNT = 500
DEFAULT_WRITES = 20
#: Bound on each step (connect, settle, a transfer), s.
STEP_TIMEOUT_S = 60.0
#: Throughput figures of Nordic's S140 SoftDevice table quoted in issue 9 (ATT MTU 247, data
#: length 251; their best figure for each PHY), kbit/s: for scale beside the spec figures.
NORDIC_S140_KBIT_S = {"1M": 702.8, "2M": 1327.5}
_PHY_NUMBER = {"1M": linklayer.PHY_1M, "2M": linklayer.PHY_2M}


def spec_kbit_s(phy: str, interval_ms: float, data_length: int = DATA_LENGTH,
                payload: int = PAYLOAD) -> tuple[float, int]:
    """(kbit/s, packets per event) one way at ``phy`` and ``interval_ms`` by the spec's timing.

    Every packet carries ``data_length`` octets and is answered by an empty PDU, T_IFS after
    each packet; a packet pair is sent only if it ends by T_IFS before the next anchor
    (Core Vol 6 Part B 2.1, 4.1.1, 4.5.1, 4.5.6). Unencrypted.
    """
    number = _PHY_NUMBER[phy]
    pair = (linklayer.packet_air_time_us(data_length, number) + linklayer.T_IFS_US
            + linklayer.packet_air_time_us(0, number))
    usable = interval_ms * 1000 - linklayer.EVENT_END_GUARD_US
    packets = int((usable - pair) // (pair + linklayer.T_IFS_US)) + 1 if usable >= pair else 0
    return packets * payload * 8 / interval_ms, packets


class _RateMeter:
    """Payload bytes reaching a board: first and last arrival, for the steady-state rate."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.arm(0)

    def arm(self, expected: int) -> None:
        with self.cond:
            self.received, self.expected = 0, expected
            self.first_rx = self.last_rx = 0.0
            self.first_bytes = 0

    def take(self, nbytes: int) -> None:
        with self.cond:
            now = time.perf_counter()
            if self.received == 0:
                self.first_rx, self.first_bytes = now, nbytes
            self.received += nbytes
            self.last_rx = now
            if self.received >= self.expected:
                self.cond.notify_all()

    def wait(self, timeout: float) -> dict[str, Any]:
        runtime.script_waits()
        with self.cond:
            self.cond.wait_for(lambda: self.received >= self.expected, timeout)
            span = self.last_rx - self.first_rx
            rate = (self.received - self.first_bytes) * 8 / 1000 / span if span > 0 else 0.0
            return {"bytes": self.received, "expected_bytes": self.expected,
                    "seconds": round(span, 6), "kbit_s": round(rate, 1),
                    "complete": self.received >= self.expected}


class RadioPair:
    """Two boards on ``air`` connected at ``interval_ms``, MTU exchanged, link settled."""

    def __init__(self, air: AirThread, phy: str, interval_ms: float, tag: str) -> None:
        self.air, self.phy, self.interval_ms = air, phy, interval_ms
        ports = [f"sim:radio-{tag}-{role}?air={air.socket_path}" for role in ("p", "c")]
        self.p = _Side(ports[0])
        try:
            self.c = _Side(ports[1])
        except BaseException:
            self.p.close()
            raise
        self.notified, self.written = _RateMeter(), _RateMeter()
        self.conn_c: Optional[int] = None
        self.link: dict[str, Any] = {}

    def connect(self) -> None:
        p, c = self.p, self.c
        ((self.handle,),) = p.ble.gatts_register_services(
            ((SVC, ((CHR, FLAG_READ | FLAG_WRITE | FLAG_WRITE_NO_RESPONSE | FLAG_NOTIFY),)),))
        for side in (p, c):
            side.ble.config(mtu=ATT_MTU)
        p.ble.gatts_set_buffer(self.handle, PAYLOAD)
        p.ble.gap_advertise(20_000, advertising.flags_field())
        interval_us = int(self.interval_ms * 1000)
        c.ble.gap_connect(*p.ble.config("mac"), 2000, interval_us, interval_us)
        self.conn_c = c.wait(_IRQ_PERIPHERAL_CONNECT, timeout=STEP_TIMEOUT_S)[0]
        self.conn_p = p.wait(_IRQ_CENTRAL_CONNECT, timeout=STEP_TIMEOUT_S)[0]
        c.ble.gattc_exchange_mtu(self.conn_c)
        mtu = c.wait(_IRQ_MTU_EXCHANGED, timeout=STEP_TIMEOUT_S)[1]
        if mtu != ATT_MTU:
            raise RuntimeError(f"ATT MTU {mtu}, asked for {ATT_MTU}")
        c.handlers[_IRQ_GATTC_NOTIFY] = lambda data: self.notified.take(len(data[2]))
        p.handlers[_IRQ_GATTS_WRITE] = lambda data: self.written.take(PAYLOAD)
        self.link = self._settled_link()

    def _settled_link(self) -> dict[str, Any]:
        """What the stacks negotiated (read from the air's link layer), once it is final."""
        want_phy = _PHY_NUMBER[self.phy]
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while time.monotonic() < deadline:
            state = self.air.call(self._link_state)
            if state and state["phy"] == [want_phy, want_phy] \
                    and state["data_length"] == [DATA_LENGTH, DATA_LENGTH]:
                return state
            time.sleep(0.05)
        raise RuntimeError(f"link did not settle on LE {self.phy}, data length {DATA_LENGTH}: "
                           f"{self.air.call(self._link_state)}")

    def _link_state(self) -> Optional[dict[str, Any]]:
        link = self.air.air.link
        for controller in list(link.controllers):
            for connection in link.connections_of(controller):
                return {"phy": list(connection.phy),
                        "data_length": list(connection.max_tx_octets),
                        "interval_ms": round(connection.interval_s * 1000, 2)}
        return None

    def notify(self, count: int) -> dict[str, Any]:
        payload = bytes(range(256))[:PAYLOAD]
        self.notified.arm(count * PAYLOAD)
        for _ in range(count):
            self.p.ble.gatts_notify(self.conn_p, self.handle, payload)
        return self.notified.wait(STEP_TIMEOUT_S)

    def write_without_response(self, count: int) -> dict[str, Any]:
        payload = bytes(range(256))[:PAYLOAD]
        self.written.arm(count * PAYLOAD)
        for _ in range(count):
            while True:
                try:
                    self.c.ble.gattc_write(self.conn_c, self.handle, payload, 0)
                    break
                except OSError:
                    time.sleep(WRITE_RETRY_S)
        return self.written.wait(STEP_TIMEOUT_S)

    def write_round_trips(self, count: int) -> list[float]:
        """Seconds from gattc_write (with response) to its _IRQ_GATTC_WRITE_DONE, each."""
        rtts = []
        for i in range(count):
            done = len(self.c.seen.get(_IRQ_GATTC_WRITE_DONE, []))
            t0 = time.perf_counter()
            self.c.ble.gattc_write(self.conn_c, self.handle, b"rtt", 1)
            self.c.wait(_IRQ_GATTC_WRITE_DONE, done + 1, timeout=STEP_TIMEOUT_S)
            rtts.append(time.perf_counter() - t0)
            # Start the next one at another phase of the interval.
            time.sleep((i * 0.37 % 1.0) * self.interval_ms / 1000)
        return rtts

    def close(self) -> None:
        try:
            if self.conn_c is not None:
                self.c.ble.gap_disconnect(self.conn_c)
        except OSError:
            pass
        finally:
            for side in (self.p, self.c):
                side.close()


def measure(phys: list[str], intervals: list[float], count: int, writes: int,
            progress) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bbradio-") as tmp:
        for phy in phys:
            air = AirThread.start(os.path.join(tmp, f"{phy}.sock"), timing=linklayer.TIMING_REAL,
                                  phy=phy)
            try:
                for n, interval in enumerate(intervals):
                    pair = RadioPair(air, phy, interval, f"{phy.lower()}{n}")
                    try:
                        pair.connect()
                        spec, per_event = spec_kbit_s(phy, interval)
                        row: dict[str, Any] = {"phy": phy, "interval_ms": interval,
                                               "att_mtu": ATT_MTU, "link": pair.link,
                                               "spec_kbit_s": round(spec, 1),
                                               "spec_packets_per_event": per_event}
                        row["notify"] = pair.notify(count)
                        row["write_without_response"] = pair.write_without_response(count)
                        rtts = pair.write_round_trips(writes)
                        row["write_rtt_ms"] = {
                            "median": round(statistics.median(rtts) * 1000, 2),
                            "min": round(min(rtts) * 1000, 2), "max": round(max(rtts) * 1000, 2),
                            "intervals": round(statistics.median(rtts) * 1000 / interval, 2)}
                        for key in ("notify", "write_without_response"):
                            row[key]["ratio"] = round(row[key]["kbit_s"] / spec, 3) if spec else None
                        rows.append(row)
                        progress(row)
                    finally:
                        pair.close()
            finally:
                air.stop()
    return rows


def _format(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'PHY':4} {'interval':>9}  {'transfer':26}{'simulated':>14}  {'physical':>14}  "
             f"{'ratio':>6}"]
    for row in rows:
        for key, name in (("notify", "GATT notify"),
                          ("write_without_response", "GATT write without response")):
            figure = row[key]
            ratio = f"{figure['ratio']:.2f}" if figure["ratio"] is not None else "-"
            lines.append(f"{row['phy']:4} {row['interval_ms']:>7.1f}ms  {name:26}"
                         f"{figure['kbit_s']:>8.1f} kbit/s  {row['spec_kbit_s']:>8.1f} kbit/s  "
                         f"{ratio:>6}" + ("" if figure["complete"] else "  INCOMPLETE"))
        rtt = row["write_rtt_ms"]
        lines.append(f"{row['phy']:4} {row['interval_ms']:>7.1f}ms  {'write with response RTT':26}"
                     f"{rtt['median']:>8.1f} ms     = {rtt['intervals']:.2f} intervals "
                     f"(min {rtt['min']:.1f}, max {rtt['max']:.1f} ms)")
    lines.append("physical: computed from the Core spec timing (spec_kbit_s: full 251-octet LL "
                 "PDUs, each acked by an empty PDU, T_IFS 150 us, pairs ending T_IFS before the "
                 "next anchor), ATT MTU 247, unencrypted")
    lines.append("for scale, Nordic's S140 table as quoted in issue 9: "
                 + ", ".join(f"LE {k} {v} kbit/s" for k, v in NORDIC_S140_KBIT_S.items())
                 + " (their best figure per PHY)")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blebridge.micropython.bench_radio",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--phy", nargs="+", choices=PHYS, default=list(PHYS))
    parser.add_argument("--interval", nargs="+", type=float, default=list(INTERVALS_MS),
                        help="connection intervals, ms (7.5 .. 4000, multiples of 1.25)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"packets per throughput run (default {DEFAULT_COUNT})")
    parser.add_argument("--writes", type=int, default=DEFAULT_WRITES,
                        help=f"writes with response timed (default {DEFAULT_WRITES})")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    ns = parser.parse_args(argv)
    if ns.count < 2 or ns.writes < 1:
        parser.error("--count must be at least 2 and --writes at least 1")
    if any(not 7.5 <= i <= 4000 for i in ns.interval):
        parser.error("--interval must be within 7.5 .. 4000 ms")

    def progress(row: dict[str, Any]) -> None:
        if not ns.json:
            print(f"LE {row['phy']}, {row['interval_ms']} ms: link {row['link']}", flush=True)

    try:
        rows = measure(ns.phy, ns.interval, ns.count, ns.writes, progress)
    except (OSError, TimeoutError, RuntimeError) as exc:
        print(f"bench_radio: {exc}", file=sys.stderr)
        return 1
    ok = all(row[k]["complete"] for row in rows for k in ("notify", "write_without_response"))
    if ns.json:
        print(json.dumps({"ok": ok, "rows": rows}, indent=2))
    else:
        print(_format(rows))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
