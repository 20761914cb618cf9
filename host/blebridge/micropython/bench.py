"""Throughput between two boards through the MicroPython API: GATT notify, write without
response, and L2CAP, in kbit/s of payload with the ATT MTU / L2CAP MTU used.

    python -m blebridge.micropython.bench [--ports sim:bench-p sim:bench-c] [--count 200]

Both boards are driven from this one process (two ``BLE(port=...)`` objects). Each test sends
``count`` packets as fast as the API allows and times from the first send to the last packet
seen by the receiver. Exits 1 if a test did not deliver every packet.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, Callable

from . import BLE, FLAG_NOTIFY, FLAG_READ, FLAG_WRITE, FLAG_WRITE_NO_RESPONSE, UUID
from . import runtime

_IRQ_CENTRAL_CONNECT = 1
_IRQ_GATTS_WRITE = 3
_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_GATTC_NOTIFY = 18
_IRQ_MTU_EXCHANGED = 21
_IRQ_L2CAP_CONNECT = 23
_IRQ_L2CAP_RECV = 25
_IRQ_L2CAP_SEND_READY = 26

#: ATT MTU both sides ask for (bytes); notify/write payload is MTU - 3.
ATT_MTU = 247
#: L2CAP CoC MTU both sides ask for (bytes), one SDU per send.
L2CAP_MTU = 512
L2CAP_PSM = 0x81
#: A test that has not delivered everything by then fails (s).
TIMEOUT_S = 20.0

SVC = UUID("7e1a0004-5c4b-4d55-9a1e-000000000001")
CHR = UUID("7e1a0004-5c4b-4d55-9a1e-000000000002")


class _Side:
    def __init__(self, port: str) -> None:
        self.ble = BLE(port=port)
        self.cond = threading.Condition()
        self.seen: dict[int, list] = {}
        self.bytes_in = 0
        self.last_rx = 0.0
        self.handlers: dict[int, Callable[[tuple], Any]] = {}
        self.ble.active(True)
        self.ble.irq(self._irq)

    def _irq(self, event: int, data: tuple) -> Any:
        extra = self.handlers.get(event)
        result = extra(data) if extra else None
        with self.cond:
            self.seen.setdefault(event, []).append(tuple(x if not isinstance(x, memoryview) else len(x) for x in data))
            self.cond.notify_all()
        return result

    def wait(self, event: int, count: int = 1, timeout: float = TIMEOUT_S) -> tuple:
        # This thread is the script: it now waits, so handlers held back since its last BLE
        # call (runtime.CallGate) may run at once instead of after CALL_GRACE_S.
        runtime.script_waits()
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.seen.get(event, [])) >= count, timeout)
        if not ok:
            raise TimeoutError(f"event {event} x{count} not seen in {timeout} s")
        return self.seen[event][count - 1]


def _rate(nbytes: int, seconds: float) -> float:
    return nbytes * 8 / 1000 / max(seconds, 1e-6)


def run(ports: tuple[str, str], count: int) -> int:
    p, c = _Side(ports[0]), _Side(ports[1])
    failures = 0
    try:
        ((handle,),) = p.ble.gatts_register_services(
            ((SVC, ((CHR, FLAG_READ | FLAG_WRITE | FLAG_WRITE_NO_RESPONSE | FLAG_NOTIFY),)),))
        for side in (p, c):
            side.ble.config(mtu=ATT_MTU)
        p.ble.gatts_set_buffer(handle, ATT_MTU - 3)
        p.ble.gap_advertise(20_000, b"\x02\x01\x06")
        c.ble.gap_connect(*p.ble.config("mac"))
        conn_c = c.wait(_IRQ_PERIPHERAL_CONNECT)[0]
        conn_p = p.wait(_IRQ_CENTRAL_CONNECT)[0]
        c.ble.gattc_exchange_mtu(conn_c)
        mtu = c.wait(_IRQ_MTU_EXCHANGED)[1]
        payload = bytes(range(256))[: mtu - 3]
        print(f"boards: {ports[0]} (peripheral), {ports[1]} (central); ATT MTU {mtu}, "
              f"{count} packets of {len(payload)} bytes per GATT test")

        def counter(side: _Side, index: int) -> Callable[[tuple], None]:
            def count_bytes(data: tuple) -> None:
                side.bytes_in += len(data[index]) if index >= 0 else len(payload)
                side.last_rx = time.perf_counter()
            return count_bytes

        # GATT notify: peripheral -> central.
        c.handlers[_IRQ_GATTC_NOTIFY] = counter(c, 2)
        t0 = time.perf_counter()
        for _ in range(count):
            p.ble.gatts_notify(conn_p, handle, payload)
        failures += _report("GATT notify", c, _IRQ_GATTC_NOTIFY, count, t0, f"ATT MTU {mtu}")

        # GATT write without response: central -> peripheral.
        p.handlers[_IRQ_GATTS_WRITE] = counter(p, -1)
        t0 = time.perf_counter()
        for _ in range(count):
            while True:
                try:
                    c.ble.gattc_write(conn_c, handle, payload, 0)
                    break
                except OSError:
                    time.sleep(0.0005)   # out of buffers: retry, as perf_gatt_char_write does
        failures += _report("GATT write without response", p, _IRQ_GATTS_WRITE, count, t0, f"ATT MTU {mtu}")

        # L2CAP CoC: central -> peripheral, one SDU of the channel MTU per send.
        p.ble.l2cap_listen(L2CAP_PSM, L2CAP_MTU)
        time.sleep(0.1)
        c.ble.l2cap_connect(conn_c, L2CAP_PSM, L2CAP_MTU)
        _, cid_c, _, _, peer_mtu = c.wait(_IRQ_L2CAP_CONNECT)
        _, cid_p, _, _, _ = p.wait(_IRQ_L2CAP_CONNECT)
        sdu = bytes(i & 0xFF for i in range(peer_mtu))
        rx = bytearray(L2CAP_MTU * 4)

        total = count * len(sdu)
        p.bytes_in = 0   # it still holds the GATT write test's bytes

        def drain() -> None:
            # The receiving script's loop: take what arrived, as l2cap_server.py does.
            deadline = time.monotonic() + TIMEOUT_S
            while p.bytes_in < total and time.monotonic() < deadline:
                n = p.ble.l2cap_recvinto(conn_p, cid_p, rx)
                if n:
                    p.bytes_in += n
                    p.last_rx = time.perf_counter()
                else:
                    time.sleep(0.0005)

        receiver = threading.Thread(target=drain, daemon=True)
        receiver.start()
        t0 = time.perf_counter()
        ready = 0
        for _ in range(count):
            if not c.ble.l2cap_send(conn_c, cid_c, sdu):
                ready += 1
                c.wait(_IRQ_L2CAP_SEND_READY, count=ready)
        receiver.join(TIMEOUT_S)
        ok = p.bytes_in >= total
        secs = max(0.0, p.last_rx - t0)
        print(f"  {'L2CAP CoC':28} {_rate(p.bytes_in, secs):9.0f} kbit/s  "
              f"({p.bytes_in} of {total} bytes in {secs * 1000:.0f} ms, L2CAP MTU {peer_mtu})"
              + ("" if ok else "  INCOMPLETE"))
        failures += 0 if ok else 1
        c.ble.gap_disconnect(conn_c)
    finally:
        for side in (p, c):
            try:
                side.ble.active(False)
            except OSError:
                pass
            side.ble.close()
    return 1 if failures else 0


def _report(name: str, side: _Side, event: int, count: int, t0: float, mtu_text: str) -> int:
    try:
        side.wait(event, count)
        ok = True
    except TimeoutError:
        ok = False
    got = len(side.seen.get(event, []))
    secs = max(0.0, side.last_rx - t0)
    print(f"  {name:28} {_rate(side.bytes_in, secs):9.0f} kbit/s  "
          f"({got} of {count} packets, {side.bytes_in} bytes in {secs * 1000:.0f} ms, {mtu_text})"
          + ("" if ok else "  INCOMPLETE"))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blebridge.micropython.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ports", nargs=2, default=("sim:bench-peripheral", "sim:bench-central"),
                        metavar=("PERIPHERAL", "CENTRAL"))
    parser.add_argument("--count", type=int, default=200, help="packets per test (default 200)")
    ns = parser.parse_args(argv)
    return run(tuple(ns.ports), ns.count)


if __name__ == "__main__":
    sys.exit(main())
