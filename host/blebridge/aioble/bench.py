"""Notifications per second into an aioble ``notified()`` loop, beside the MicroPython
``bluetooth`` IRQ rate and the raw event rate, in the same run.

    python -m blebridge.aioble.bench [--count 500] [--repeats 3] [--json]
                                     [--ports PERIPHERAL CENTRAL MP_PERIPHERAL MP_CENTRAL]

- raw events: BENCH events the central's board sends (bench_events) reaching a plain
  listener on the host (blebridge.bench.event_throughput), events/s;
- ``bluetooth``: GATT notifications from one board to another counted in the central's IRQ
  handler (blebridge.micropython.bench.BridgePair.notify), notifications/s;
- aioble: the same notifications taken by ``await characteristic.notified()`` in a loop on
  an asyncio event loop, while another thread sends them with ``Characteristic.notify``.

Each is timed from the first send to the last notification (event) seen, ``count`` of them,
ATT MTU 247 (244-byte payloads); the median of ``repeats`` runs is reported. aioble keeps the
latest notification nobody waited for (as aioble does), so a loop slower than the link
receives fewer than were sent: the report says how many arrived.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from typing import Any, Optional

from ..micropython import UUID

#: ATT MTU both boards ask for, bytes; payloads are MTU - 3.
ATT_MTU = 247
DEFAULT_COUNT = 500
DEFAULT_REPEATS = 3
DEFAULT_PORTS = ("sim:bench-aioble-p", "sim:bench-aioble-c", "sim:bench-mp-p", "sim:bench-mp-c")
#: A run ends when no notification came for this long (s): whatever was lost will not come.
QUIET_END_S = 2.0
#: Seconds for connecting and discovery.
SETUP_TIMEOUT_S = 30.0
#: The aioble figure should reach this share of the bluetooth one (issue 8).
TARGET_SHARE = 0.5

SVC = UUID("7e1a0007-5c4b-4d55-9a1e-000000000001")
CHR = UUID("7e1a0007-5c4b-4d55-9a1e-000000000002")


class AiobleNotify:
    """Two boards through blebridge.aioble, connected, MTU exchanged, characteristic found."""

    def __init__(self, ports: tuple[str, str]) -> None:
        from . import Radio
        self.p = Radio(ports[0])
        self.c = Radio(ports[1])
        self.loop = asyncio.new_event_loop()
        self.pconn: Any = None
        self.cconn: Any = None
        self.server: Any = None
        self.client: Any = None

    def connect(self) -> None:
        self.loop.run_until_complete(asyncio.wait_for(self._connect(), SETUP_TIMEOUT_S))

    async def _connect(self) -> None:
        from . import Characteristic, Service
        svc = Service(SVC)
        self.server = Characteristic(svc, CHR, read=True, notify=True)
        self.p.register_services(svc)
        self.p.config(mtu=ATT_MTU)
        self.c.config(mtu=ATT_MTU)
        advertising = asyncio.ensure_future(self.p.advertise(20_000, name="bench", timeout_ms=10_000))
        self.cconn = await self.c.Device(*self.p.config("mac")).connect(timeout_ms=10_000)
        self.pconn = await advertising
        await self.cconn.exchange_mtu(ATT_MTU, timeout_ms=5000)
        service = await self.cconn.service(SVC)
        self.client = await service.characteristic(CHR)

    def notify(self, count: int, payload: bytes) -> tuple[int, float]:
        """(notifications received, seconds from the first send to the last received)."""
        return self.loop.run_until_complete(self._notify(count, payload))

    async def _notify(self, count: int, payload: bytes) -> tuple[int, float]:
        server, pconn, client = self.server, self.pconn, self.client
        client._notify_queue.clear()
        started = threading.Event()
        t0 = [0.0]

        def send() -> None:
            t0[0] = time.perf_counter()
            started.set()
            for _ in range(count):
                server.notify(pconn, payload)

        sender = threading.Thread(target=send, name="bench-aioble-notify", daemon=True)
        received, last = 0, 0.0
        sender.start()
        started.wait()
        while received < count:
            try:
                await client.notified(timeout_ms=int(QUIET_END_S * 1000))
            except asyncio.TimeoutError:
                break
            received += 1
            last = time.perf_counter()
        sender.join()
        return received, max(0.0, last - t0[0])

    def close(self) -> None:
        try:
            if self.cconn is not None and self.cconn.is_connected():
                self.loop.run_until_complete(self.cconn.disconnect())
        except Exception:
            pass
        for r in (self.p, self.c):
            r.close()
        self.loop.close()


def measure(ports: tuple[str, str, str, str], count: int, repeats: int,
            progress: Any = print) -> dict[str, Any]:
    from ..bench import event_throughput
    from ..micropython.bench import BridgePair

    payload = bytes(range(256))[:ATT_MTU - 3]
    aio = AiobleNotify((ports[0], ports[1]))
    mp: Optional[BridgePair] = None
    try:
        aio.connect()
        mp = BridgePair((ports[2], ports[3]))
        mp.connect()
        if mp.att_mtu != ATT_MTU:
            raise RuntimeError(f"the bluetooth pair agreed ATT MTU {mp.att_mtu}, not {ATT_MTU}")
        progress(f"aioble: {ports[0]} -> {ports[1]}; bluetooth: {ports[2]} -> {ports[3]}; "
                 f"{count} notifications of {len(payload)} bytes, median of {repeats} runs")
        raw, irq, aioble_runs = [], [], []
        for i in range(repeats):
            r = event_throughput(aio.c.board, count, len(payload))
            raw.append((r["received"], r["seconds"]))
            t = mp.notify(count, payload, 10.0 + count * 0.02)
            irq.append((t.delivered // len(payload), t.seconds))
            aioble_runs.append(aio.notify(count, payload))
            progress(f"run {i + 1}: raw {_rate(raw[-1]):.0f}/s, bluetooth {_rate(irq[-1]):.0f}/s, "
                     f"aioble {_rate(aioble_runs[-1]):.0f}/s ({aioble_runs[-1][0]} of {count} received)")
    finally:
        aio.close()
        if mp is not None:
            mp.close()

    def side(runs: list[tuple[int, float]]) -> dict[str, Any]:
        return {"per_s": round(statistics.median(_rate(x) for x in runs), 1),
                "runs": [{"received": n, "seconds": round(s, 6)} for n, s in runs]}

    result = {"count": count, "payload_bytes": len(payload), "att_mtu": ATT_MTU, "repeats": repeats,
              "ports": list(ports), "raw_events": side(raw), "bluetooth_irq": side(irq),
              "aioble_notified": side(aioble_runs)}
    bt = result["bluetooth_irq"]["per_s"]
    result["aioble_share_of_bluetooth"] = round(result["aioble_notified"]["per_s"] / bt, 3) if bt else None
    return result


def _rate(run: tuple[int, float]) -> float:
    n, seconds = run
    return n / seconds if seconds > 0 else 0.0


def format_report(r: dict[str, Any]) -> str:
    share = r["aioble_share_of_bluetooth"]
    lines = [
        f"Notifications per second ({r['count']} x {r['payload_bytes']} bytes, ATT MTU {r['att_mtu']}, "
        f"median of {r['repeats']}):",
        f"  raw events (host listener)     {r['raw_events']['per_s']:10.0f} /s",
        f"  bluetooth IRQ handler          {r['bluetooth_irq']['per_s']:10.0f} /s",
        f"  aioble notified() loop         {r['aioble_notified']['per_s']:10.0f} /s"
        + (f"   ({share * 100:.0f} % of bluetooth; target {TARGET_SHARE * 100:.0f} %)" if share is not None else ""),
        "  aioble received per run: " + ", ".join(f"{x['received']}/{r['count']}" for x in r["aioble_notified"]["runs"]),
    ]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m blebridge.aioble.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--ports", nargs=4, metavar=("PERIPHERAL", "CENTRAL", "MP_PERIPHERAL", "MP_CENTRAL"),
                    default=list(DEFAULT_PORTS))
    ap.add_argument("--count", type=int, default=DEFAULT_COUNT)
    ap.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if args.count < 1 or args.repeats < 1:
        ap.error("--count and --repeats must be at least 1")
    quiet = args.json
    r = measure(tuple(args.ports), args.count, args.repeats,
                (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr)))
    print(json.dumps(r, indent=2) if args.json else format_report(r))
    complete = all(x["received"] == r["count"] for x in r["bluetooth_irq"]["runs"])
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
