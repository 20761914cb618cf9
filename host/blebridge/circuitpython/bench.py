"""Notifications per second into a ``_bleio.CharacteristicBuffer`` and a ``_bleio.PacketBuffer``,
beside the MicroPython ``bluetooth`` IRQ rate, in the same run.

    python -m blebridge.circuitpython.bench [--count 500] [--repeats 3] [--json]
                                            [--ports PERIPHERAL CENTRAL MP_PERIPHERAL MP_CENTRAL]

- ``bluetooth``: GATT notifications from one board to another counted in the central's IRQ
  handler (blebridge.micropython.bench.BridgePair.notify), notifications/s;
- CharacteristicBuffer: the same notifications sent by the peripheral's ``_bleio`` (a local
  characteristic's value set, one board call each, as ``gatts_notify`` is for ``bluetooth``)
  and taken by the central script with ``read()`` in a loop;
- PacketBuffer: sent with ``PacketBuffer.write`` and taken with ``readinto`` in a polling loop,
  as CircuitPython scripts do.

Each is timed from the first send to the last notification the script took, ``count`` of
them, ATT MTU 247 (244-byte payloads); the median of ``repeats`` runs is reported. The buffers
are large enough for a whole run, so a slow reader loses nothing (the report says how many
arrived).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from typing import Any, Callable, Optional

#: ATT MTU both boards ask for, bytes; payloads are MTU - 3.
ATT_MTU = 247
DEFAULT_COUNT = 500
DEFAULT_REPEATS = 3
DEFAULT_PORTS = ("sim:bench-bleio-p", "sim:bench-bleio-c", "sim:bench-mp-p", "sim:bench-mp-c")
#: A run ends when nothing came for this long (s): whatever was lost will not come.
QUIET_END_S = 2.0
#: Seconds for connecting and discovery.
SETUP_TIMEOUT_S = 30.0
#: Seconds a PacketBuffer reader sleeps when no packet is buffered (a script's polling loop).
POLL_S = 0.0002
#: The _bleio figures should reach this share of the bluetooth one (issue 10).
TARGET_SHARE = 0.5


class BleioNotify:
    """Two boards through blebridge's ``_bleio``, connected, MTU exchanged, characteristics
    found: one for the CharacteristicBuffer, one for the PacketBuffer."""

    def __init__(self, ports: tuple[str, str]) -> None:
        from . import adapter_for
        self.p = adapter_for(ports[0])
        self.c = adapter_for(ports[1])
        self.cconn: Any = None

    def connect(self, payload_len: int) -> None:
        from . import using
        from . import _bleio
        from .. import calls, protocol as P
        C = _bleio.Characteristic
        svc_uuid = _bleio.UUID("7e1a0010-5c4b-4d55-9a1e-0000000000b0")
        stream_uuid = _bleio.UUID("7e1a0010-5c4b-4d55-9a1e-0000000000b1")
        packet_uuid = _bleio.UUID("7e1a0010-5c4b-4d55-9a1e-0000000000b2")
        with using(self.p):
            svc = _bleio.Service(svc_uuid)
        self.stream = C.add_to_service(svc, stream_uuid, properties=C.NOTIFY, max_length=payload_len)
        packet = C.add_to_service(svc, packet_uuid, properties=C.NOTIFY, max_length=payload_len)
        self.packet_out = _bleio.PacketBuffer(packet, buffer_size=1)
        for a in (self.p, self.c):
            calls.config_set(a.board, key=P.CONSTANTS["config"]["MTU"], value=ATT_MTU)
        self.p.start_advertising(bytes([2, 1, 6]), interval=0.02)
        self.cconn = self.c.connect(self.p.address, timeout=SETUP_TIMEOUT_S)
        (service,) = self.cconn.discover_remote_services([svc_uuid])
        chars = {ch.uuid: ch for ch in service.characteristics}
        self.mtu = self.cconn.max_packet_length + 3
        remote_stream = chars[stream_uuid]
        remote_stream.set_cccd(notify=True)
        self.stream_in = _bleio.CharacteristicBuffer(remote_stream, timeout=QUIET_END_S,
                                                     buffer_size=1 << 22)
        self.packet_in = _bleio.PacketBuffer(chars[packet_uuid], buffer_size=4096)

    def _run(self, count: int, send: Callable[[], None], take: Callable[[], int]) -> tuple[int, float]:
        """(notifications the reader took, seconds from the first send to the last take)."""
        t0 = [0.0]
        started = threading.Event()

        def sender() -> None:
            t0[0] = time.perf_counter()
            started.set()
            for _ in range(count):
                send()

        th = threading.Thread(target=sender, name="bench-bleio-notify", daemon=True)
        received, last = 0, 0.0
        th.start()
        started.wait()
        while received < count:
            n = take()
            if n == 0:
                break
            received += n
            last = time.perf_counter()
        th.join()
        return received, max(0.0, last - t0[0])

    def characteristic_buffer(self, count: int, payload: bytes) -> tuple[int, float]:
        buf = self.stream_in
        buf.reset_input_buffer()
        stream = self.stream

        def send() -> None:
            stream.value = payload

        def take() -> int:
            # One notification's bytes (the reader's timeout, QUIET_END_S, ends a run).
            return 1 if len(buf.read(len(payload))) == len(payload) else 0

        return self._run(count, send, take)

    def packet_buffer(self, count: int, payload: bytes) -> tuple[int, float]:
        pin, pout = self.packet_in, self.packet_out
        rx = bytearray(len(payload))
        while pin.readinto(rx):
            pass

        def send() -> None:
            pout.write(payload)

        def take() -> int:
            deadline = time.monotonic() + QUIET_END_S
            while time.monotonic() < deadline:
                if pin.readinto(rx):
                    return 1
                time.sleep(POLL_S)
            return 0

        return self._run(count, send, take)

    def close(self) -> None:
        try:
            if self.cconn is not None and self.cconn.connected:
                self.cconn.disconnect()
        except Exception:
            pass
        for a in (self.p, self.c):
            a.close()


def measure(ports: tuple[str, str, str, str], count: int, repeats: int,
            progress: Any = print) -> dict[str, Any]:
    from ..micropython.bench import BridgePair

    payload = bytes(range(256))[:ATT_MTU - 3]
    bleio = BleioNotify((ports[0], ports[1]))
    mp: Optional[BridgePair] = None
    try:
        bleio.connect(len(payload))
        if bleio.mtu != ATT_MTU:
            raise RuntimeError(f"the _bleio pair agreed ATT MTU {bleio.mtu}, not {ATT_MTU}")
        mp = BridgePair((ports[2], ports[3]))
        mp.connect()
        if mp.att_mtu != ATT_MTU:
            raise RuntimeError(f"the bluetooth pair agreed ATT MTU {mp.att_mtu}, not {ATT_MTU}")
        progress(f"_bleio: {ports[0]} -> {ports[1]}; bluetooth: {ports[2]} -> {ports[3]}; "
                 f"{count} notifications of {len(payload)} bytes, median of {repeats} runs")
        irq, cbuf, pbuf = [], [], []
        for i in range(repeats):
            t = mp.notify(count, payload, 10.0 + count * 0.02)
            irq.append((t.delivered // len(payload), t.seconds))
            cbuf.append(bleio.characteristic_buffer(count, payload))
            pbuf.append(bleio.packet_buffer(count, payload))
            progress(f"run {i + 1}: bluetooth {_rate(irq[-1]):.0f}/s, CharacteristicBuffer "
                     f"{_rate(cbuf[-1]):.0f}/s ({cbuf[-1][0]} of {count}), PacketBuffer "
                     f"{_rate(pbuf[-1]):.0f}/s ({pbuf[-1][0]} of {count})")
    finally:
        bleio.close()
        if mp is not None:
            mp.close()

    def side(runs: list[tuple[int, float]]) -> dict[str, Any]:
        return {"per_s": round(statistics.median(_rate(x) for x in runs), 1),
                "runs": [{"received": n, "seconds": round(s, 6)} for n, s in runs]}

    result = {"count": count, "payload_bytes": len(payload), "att_mtu": ATT_MTU, "repeats": repeats,
              "ports": list(ports), "bluetooth_irq": side(irq), "characteristic_buffer": side(cbuf),
              "packet_buffer": side(pbuf)}
    bt = result["bluetooth_irq"]["per_s"]
    for key in ("characteristic_buffer", "packet_buffer"):
        result[f"{key}_share_of_bluetooth"] = round(result[key]["per_s"] / bt, 3) if bt else None
    return result


def _rate(run: tuple[int, float]) -> float:
    n, seconds = run
    return n / seconds if seconds > 0 else 0.0


def format_report(r: dict[str, Any]) -> str:
    def share(key: str) -> str:
        s = r[f"{key}_share_of_bluetooth"]
        return f"   ({s * 100:.0f} % of bluetooth; target {TARGET_SHARE * 100:.0f} %)" if s is not None else ""

    lines = [
        f"Notifications per second ({r['count']} x {r['payload_bytes']} bytes, ATT MTU {r['att_mtu']}, "
        f"median of {r['repeats']}):",
        f"  bluetooth IRQ handler          {r['bluetooth_irq']['per_s']:10.0f} /s",
        f"  _bleio CharacteristicBuffer    {r['characteristic_buffer']['per_s']:10.0f} /s" + share("characteristic_buffer"),
        f"  _bleio PacketBuffer            {r['packet_buffer']['per_s']:10.0f} /s" + share("packet_buffer"),
        "  received per run: CharacteristicBuffer "
        + ", ".join(f"{x['received']}/{r['count']}" for x in r["characteristic_buffer"]["runs"])
        + "; PacketBuffer " + ", ".join(f"{x['received']}/{r['count']}" for x in r["packet_buffer"]["runs"]),
    ]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m blebridge.circuitpython.bench",
                                 description=__doc__.split("\n\n")[0])
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
    complete = all(x["received"] == r["count"]
                   for key in ("characteristic_buffer", "packet_buffer") for x in r[key]["runs"])
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
