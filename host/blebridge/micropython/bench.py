"""Throughput between two boards through the MicroPython API, beside bare Bumble's in the same run.

    python -m blebridge.micropython.bench [--ports PERIPHERAL CENTRAL] [--count 500]
                                          [--repeats 3] [--json]

Transfers: GATT notify (peripheral -> central), GATT write without response (central ->
peripheral) and L2CAP CoC (central -> peripheral, one SDU of the channel MTU per send), in
kbit/s of payload with the ATT MTU / L2CAP MTU used. Each sends ``count`` packets as fast as
the API allows and is timed from the first send to the last payload byte seen by the receiver.

Path measured: MicroPython ``bluetooth`` layer -> RPC -> firmware core and port -> the board's
radio (the Bumble air for ``sim:`` boards). Both boards are driven from this one process.

Baseline (blebridge.sim.bench_baseline): the same transfers, sizes and counts between two plain
Bumble devices on one in-process ``LocalLink``, each on the air's own controller class: the
simulator's ceiling with no bridge in the way. Every transfer runs ``repeats`` times, bridge
then baseline in turn, and the median of each is reported with their ratio (bridge / bare).

Exits 1 if any run of a transfer did not deliver everything (or a step failed), else 0.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import statistics
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..ble import advertising
from . import BLE, FLAG_NOTIFY, FLAG_READ, FLAG_WRITE, FLAG_WRITE_NO_RESPONSE, UUID
from . import runtime

if TYPE_CHECKING:
    from ..sim.bench_baseline import Transfer

_IRQ_CENTRAL_CONNECT = 1
_IRQ_GATTS_WRITE = 3
_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_GATTC_NOTIFY = 18
_IRQ_MTU_EXCHANGED = 21
_IRQ_L2CAP_CONNECT = 23
_IRQ_L2CAP_SEND_READY = 26

#: ATT MTU both sides ask for (bytes); notify/write payload is MTU - 3.
ATT_MTU = 247
#: L2CAP CoC MTU both sides ask for (bytes), one SDU per send.
L2CAP_MTU = 512
L2CAP_PSM = 0x81
#: Packets (GATT) or SDUs (L2CAP) per transfer. Chosen so every run, bridge or bare Bumble,
#: takes at least MIN_RUN_S on the 2-core reference machine (bare Bumble: ~0.5 ms a packet).
DEFAULT_COUNT = 500
#: Runs of each transfer on each side; the median is reported.
DEFAULT_REPEATS = 3
#: Shorter runs give unstable figures: the report says so (s).
MIN_RUN_S = 0.1
#: A transfer fails when it has not delivered everything in TIMEOUT_BASE_S plus
#: TIMEOUT_PER_PACKET_S a packet (s): 20x the slowest rate seen on the simulator.
TIMEOUT_BASE_S = 10.0
TIMEOUT_PER_PACKET_S = 0.02
#: Pause after l2cap_listen before the peer connects (s): the simulated link has no latency,
#: so a connect that overtakes the listen is refused (SIMULATOR-NOTES.md).
L2CAP_LISTEN_SETTLE_S = 0.1
#: Wait before retrying a write without response refused for lack of buffers (s).
WRITE_RETRY_S = 0.0005
#: Poll period of the L2CAP receiver when nothing arrived (s), as a script's sleep loop.
L2CAP_POLL_S = 0.0005

SVC = UUID("7e1a0004-5c4b-4d55-9a1e-000000000001")
CHR = UUID("7e1a0004-5c4b-4d55-9a1e-000000000002")

BASELINE_TEXT = ("bare Bumble: two plain Bumble devices on one in-process LocalLink, "
                 "on the air's AirController, no bridge")


def _timeout(count: int) -> float:
    return TIMEOUT_BASE_S + count * TIMEOUT_PER_PACKET_S


class _Meter:
    """Payload bytes reaching one board during one transfer; fed from IRQ handler threads."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.arm(0)

    def arm(self, expected: int) -> None:
        with self.cond:
            self.received, self.expected, self.last_rx = 0, expected, 0.0

    def take(self, nbytes: int) -> None:
        with self.cond:
            self.received += nbytes
            self.last_rx = time.perf_counter()
            if self.received >= self.expected:
                self.cond.notify_all()

    def result(self, t0: float, timeout: float) -> Transfer:
        from ..sim.bench_baseline import Transfer

        # This thread is the script: it now waits, so handlers held back since its last BLE
        # call (runtime.CallGate) may run at once instead of after CALL_GRACE_S.
        runtime.script_waits()
        with self.cond:
            self.cond.wait_for(lambda: self.received >= self.expected, timeout)
            return Transfer(self.received, self.expected, max(0.0, self.last_rx - t0))


class _Side:
    """One board's BLE object, radio on, with a handler per IRQ event the bench needs."""

    def __init__(self, port: str) -> None:
        self.ble = BLE(port=port)
        self.cond = threading.Condition()
        #: Events seen since the radio came on, by IRQ number (counts only).
        self.seen: dict[int, list[tuple]] = {}
        self.handlers: dict[int, Callable[[tuple], Any]] = {}
        self.ble.active(True)
        self.ble.irq(self._irq)

    def _irq(self, event: int, data: tuple) -> Any:
        extra = self.handlers.get(event)
        result = extra(data) if extra else None
        with self.cond:
            self.seen.setdefault(event, []).append(
                tuple(x if not isinstance(x, memoryview) else len(x) for x in data))
            self.cond.notify_all()
        return result

    def wait(self, event: int, count: int = 1, timeout: float = TIMEOUT_BASE_S) -> tuple:
        """The ``count``-th ``event`` since the radio came on; TimeoutError if it does not come."""
        runtime.script_waits()
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.seen.get(event, [])) >= count, timeout)
        if not ok:
            raise TimeoutError(f"IRQ event {event} x{count} not seen in {timeout} s")
        return self.seen[event][count - 1]

    def close(self) -> None:
        try:
            self.ble.active(False)
        except OSError:
            pass
        self.ble.close()


class BridgePair:
    """Two boards through blebridge, connected, MTU exchanged, a CoC open: the bench's subject.

    Same transfers as :class:`blebridge.sim.bench_baseline.BarePair`, synchronously.
    """

    def __init__(self, ports: tuple[str, str]) -> None:
        self.ports = ports
        self.p = _Side(ports[0])
        try:
            self.c = _Side(ports[1])
        except BaseException:
            self.p.close()
            raise
        #: ATT MTU agreed and L2CAP MTU the central may send (bytes); set by connect().
        self.att_mtu = 0
        self.l2cap_mtu = 0
        self._handle = self._conn_p = self._cid_p = self._cid_c = 0
        #: The central's connection handle once connected (None: nothing to disconnect).
        self._conn_c: Optional[int] = None
        self._send_ready_seen = 0
        self._notified, self._written, self._l2cap_in = _Meter(), _Meter(), _Meter()

    def connect(self) -> None:
        p, c = self.p, self.c
        ((self._handle,),) = p.ble.gatts_register_services(
            ((SVC, ((CHR, FLAG_READ | FLAG_WRITE | FLAG_WRITE_NO_RESPONSE | FLAG_NOTIFY),)),))
        for side in (p, c):
            side.ble.config(mtu=ATT_MTU)
        p.ble.gatts_set_buffer(self._handle, ATT_MTU - 3)
        p.ble.gap_advertise(20_000, advertising.flags_field())
        c.ble.gap_connect(*p.ble.config("mac"))
        self._conn_c = c.wait(_IRQ_PERIPHERAL_CONNECT)[0]
        self._conn_p = p.wait(_IRQ_CENTRAL_CONNECT)[0]
        c.ble.gattc_exchange_mtu(self._conn_c)
        self.att_mtu = c.wait(_IRQ_MTU_EXCHANGED)[1]

        notified, written = self._notified, self._written
        c.handlers[_IRQ_GATTC_NOTIFY] = lambda data: notified.take(len(data[2]))
        # GATTS_WRITE carries no data: every write of the bench is one whole payload.
        p.handlers[_IRQ_GATTS_WRITE] = lambda data: written.take(self.att_mtu - 3)

        p.ble.l2cap_listen(L2CAP_PSM, L2CAP_MTU)
        time.sleep(L2CAP_LISTEN_SETTLE_S)
        c.ble.l2cap_connect(self._conn_c, L2CAP_PSM, L2CAP_MTU)
        _, self._cid_c, _, _, self.l2cap_mtu = c.wait(_IRQ_L2CAP_CONNECT)
        _, self._cid_p, _, _, _ = p.wait(_IRQ_L2CAP_CONNECT)

    def notify(self, count: int, payload: bytes, timeout: float) -> Transfer:
        ble, conn, handle = self.p.ble, self._conn_p, self._handle
        self._notified.arm(count * len(payload))
        t0 = time.perf_counter()
        for _ in range(count):
            ble.gatts_notify(conn, handle, payload)
        return self._notified.result(t0, timeout)

    def write_without_response(self, count: int, payload: bytes, timeout: float) -> Transfer:
        if len(payload) != self.att_mtu - 3:
            raise ValueError(f"write payload of {len(payload)} bytes: the bench counts "
                             f"ATT MTU - 3 = {self.att_mtu - 3} per write")
        ble, conn, handle = self.c.ble, self._conn_c, self._handle
        self._written.arm(count * len(payload))
        t0 = time.perf_counter()
        for _ in range(count):
            while True:
                try:
                    ble.gattc_write(conn, handle, payload, 0)
                    break
                except OSError:
                    time.sleep(WRITE_RETRY_S)  # out of buffers: retry, as perf_gatt_char_write does
        return self._written.result(t0, timeout)

    def l2cap(self, count: int, sdu: bytes, timeout: float) -> Transfer:
        p, c, meter = self.p, self.c, self._l2cap_in
        meter.arm(count * len(sdu))
        rx = bytearray(L2CAP_MTU * 4)
        deadline = time.monotonic() + timeout

        def drain() -> None:
            # The receiving script's loop: take what arrived, as l2cap_server.py does.
            while meter.received < meter.expected and time.monotonic() < deadline:
                n = p.ble.l2cap_recvinto(self._conn_p, self._cid_p, rx)
                if n:
                    meter.take(n)
                else:
                    time.sleep(L2CAP_POLL_S)

        receiver = threading.Thread(target=drain, name="bench-l2cap-rx", daemon=True)
        receiver.start()
        t0 = time.perf_counter()
        try:
            for _ in range(count):
                if not c.ble.l2cap_send(self._conn_c, self._cid_c, sdu):
                    self._send_ready_seen += 1
                    c.wait(_IRQ_L2CAP_SEND_READY, self._send_ready_seen,
                           max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pass  # reported as an incomplete transfer
        receiver.join(max(0.0, deadline - time.monotonic()))
        return meter.result(t0, 0.0)

    def close(self) -> None:
        try:
            if self._conn_c is not None:
                self.c.ble.gap_disconnect(self._conn_c)
        except OSError:
            pass
        finally:
            for side in (self.p, self.c):
                side.close()


@dataclasses.dataclass
class Figure:
    """One transfer's runs on both sides."""

    name: str
    mtu: str
    payload_bytes: int
    bridge: list[Transfer] = dataclasses.field(default_factory=list)
    bare: list[Transfer] = dataclasses.field(default_factory=list)

    @staticmethod
    def median(runs: list[Transfer]) -> float:
        return statistics.median(t.kbit_s for t in runs) if runs else 0.0

    @property
    def complete(self) -> bool:
        return all(t.complete for t in self.bridge + self.bare) and bool(self.bridge) \
            and bool(self.bare)

    @property
    def ratio(self) -> Optional[float]:
        bare = self.median(self.bare)
        return self.median(self.bridge) / bare if bare > 0 else None

    def as_json(self) -> dict[str, Any]:
        def side(runs: list[Transfer]) -> dict[str, Any]:
            return {
                "kbit_s": round(self.median(runs), 1),
                "complete": bool(runs) and all(t.complete for t in runs),
                "runs": [{"kbit_s": round(t.kbit_s, 1), "seconds": round(t.seconds, 6),
                          "bytes": t.delivered, "expected_bytes": t.expected} for t in runs],
            }
        ratio = self.ratio
        return {"name": self.name, "mtu": self.mtu, "payload_bytes": self.payload_bytes,
                "blebridge": side(self.bridge), "bare_bumble": side(self.bare),
                "ratio": round(ratio, 3) if ratio is not None else None}


def measure(ports: tuple[str, str], count: int, repeats: int,
            progress: Callable[[str], None]) -> tuple[dict[str, Any], list[Figure]]:
    """Connect both pairs, run every transfer ``repeats`` times on each; (setup facts, figures).

    A transfer that comes up incomplete is not run again on either side: late packets would
    be counted in the next run.
    """
    from ..sim.bench_baseline import BarePair

    timeout = _timeout(count)
    loop = asyncio.new_event_loop()
    bridge = BridgePair(ports)
    bare: Optional[BarePair] = None
    try:
        bridge.connect()
        payload = bytes(range(256))[: bridge.att_mtu - 3]
        sdu = bytes(i & 0xFF for i in range(bridge.l2cap_mtu))
        # The baseline gets the sizes the boards agreed on, so both sides move the same bytes.
        bare = loop.run_until_complete(BarePair.open(bridge.att_mtu, bridge.l2cap_mtu))
        if (bare.att_mtu, bare.l2cap_mtu) != (bridge.att_mtu, bridge.l2cap_mtu):
            raise RuntimeError(f"baseline MTUs ATT {bare.att_mtu} / L2CAP {bare.l2cap_mtu} differ "
                               f"from the boards' {bridge.att_mtu} / {bridge.l2cap_mtu}")
        setup = {"ports": list(ports), "att_mtu": bridge.att_mtu, "l2cap_mtu": bridge.l2cap_mtu,
                 "count": count, "repeats": repeats, "baseline": BASELINE_TEXT}
        progress(f"blebridge: {ports[0]} (peripheral), {ports[1]} (central)\n"
                 f"baseline:  {BASELINE_TEXT}\n"
                 f"{count} packets of {len(payload)} bytes per GATT transfer, {count} SDUs of "
                 f"{len(sdu)} bytes over L2CAP; "
                 + (f"median of {repeats} runs each" if repeats > 1 else "one run each"))
        bare_pair = bare
        plan: list[tuple[Figure, Callable[[], Transfer], Callable[[], Transfer]]] = [
            (Figure("GATT notify", f"ATT {bridge.att_mtu}", len(payload)),
             lambda: bridge.notify(count, payload, timeout),
             lambda: loop.run_until_complete(bare_pair.notify(count, payload, timeout))),
            (Figure("GATT write without response", f"ATT {bridge.att_mtu}", len(payload)),
             lambda: bridge.write_without_response(count, payload, timeout),
             lambda: loop.run_until_complete(
                 bare_pair.write_without_response(count, payload, timeout))),
            (Figure("L2CAP CoC", f"L2CAP {bridge.l2cap_mtu}", len(sdu)),
             lambda: bridge.l2cap(count, sdu, timeout),
             lambda: loop.run_until_complete(bare_pair.l2cap(count, sdu, timeout))),
        ]
        # Runs interleave (bridge, bare, next transfer, ...) so a burst of load on the machine
        # slows both sides of a ratio alike.
        for _ in range(repeats):
            for figure, run_bridge, run_bare in plan:
                if figure.bridge and not figure.complete:
                    continue
                figure.bridge.append(run_bridge())
                figure.bare.append(run_bare())
        return setup, [figure for figure, _, _ in plan]
    finally:
        try:
            bridge.close()
        finally:
            if bare is not None:
                loop.run_until_complete(bare.close())
            loop.close()


def _format_table(figures: list[Figure]) -> str:
    def row(name: str, bridge: str, bare: str, ratio: str, mtu: str) -> str:
        return f"{name:29}{bridge:>13}  {bare:>13}  {ratio:>6}   {mtu}"

    lines = [row("", "blebridge", "bare Bumble", "ratio", "MTU")]
    for f in figures:
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        lines.append(row(f.name, f"{f.median(f.bridge):.0f} kbit/s",
                         f"{f.median(f.bare):.0f} kbit/s", ratio, f.mtu)
                     + ("" if f.complete else "  INCOMPLETE"))
    for f in figures:
        for side, runs in (("blebridge", f.bridge), ("bare Bumble", f.bare)):
            for i, t in enumerate(runs, 1):
                if not t.complete:
                    lines.append(f"INCOMPLETE: {f.name}, {side} run {i}: {t.delivered} of "
                                 f"{t.expected} bytes")
    runs = [t for f in figures for t in f.bridge + f.bare]
    if runs:
        shortest = min(t.seconds for t in runs)
        longest = max(t.seconds for t in runs)
        lines.append(f"runs took {shortest * 1000:.0f}-{longest * 1000:.0f} ms each"
                     + (f"; under {MIN_RUN_S * 1000:.0f} ms the figures are unstable: raise --count"
                        if shortest < MIN_RUN_S else ""))
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blebridge.micropython.bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--ports", nargs=2, default=("sim:bench-peripheral", "sim:bench-central"),
                        metavar=("PERIPHERAL", "CENTRAL"))
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"packets (GATT) or SDUs (L2CAP) per run (default {DEFAULT_COUNT})")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help=f"runs of each transfer on each side, median reported "
                             f"(default {DEFAULT_REPEATS})")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (setup, every run, medians, ratios) only")
    ns = parser.parse_args(argv)
    if ns.count < 1 or ns.repeats < 1:
        parser.error("--count and --repeats must be at least 1")
    if importlib.util.find_spec("bumble") is None:
        print("bench: the bare Bumble baseline needs bumble: pip install 'blebridge[sim]'",
              file=sys.stderr)
        return 2

    def progress(text: str) -> None:
        if not ns.json:
            print(text, flush=True)

    try:
        setup, figures = measure(tuple(ns.ports), ns.count, ns.repeats, progress)
    except (OSError, TimeoutError, RuntimeError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    ok = all(f.complete for f in figures)
    if ns.json:
        print(json.dumps({**setup, "ok": ok, "transfers": [f.as_json() for f in figures]},
                         indent=2))
    else:
        print(_format_table(figures))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
