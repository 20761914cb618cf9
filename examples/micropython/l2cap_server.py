# L2CAP connection-oriented channel server: advertises, accepts one channel on _PSM, receives
# _TOTAL bytes (a counting pattern), checks them, reports the rate and waits for the client to
# close the channel and disconnect.
# Runs unchanged on a MicroPython board with L2CAP, or with `blebridge run l2cap_server.py`.

import bluetooth
import time
from micropython import const

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_L2CAP_ACCEPT = const(22)
_IRQ_L2CAP_CONNECT = const(23)
_IRQ_L2CAP_DISCONNECT = const(24)
_IRQ_L2CAP_RECV = const(25)

_PSM = const(0x80)
_MTU = const(512)
_TOTAL = const(64 * 1024)
_TIMEOUT_MS = const(20_000)

events = {}


def irq(event, data):
    if event == _IRQ_L2CAP_ACCEPT:
        conn, cid, psm, our_mtu, peer_mtu = data
        print("accepting channel on PSM", psm)
        return 0
    if event == _IRQ_L2CAP_CONNECT:
        conn, cid, psm, our_mtu, peer_mtu = data
        print("channel open, our MTU", our_mtu, "peer MTU", peer_mtu)
    events[event] = data


def wait(event):
    t0 = time.ticks_ms()
    while event not in events:
        if time.ticks_diff(time.ticks_ms(), t0) > _TIMEOUT_MS:
            raise OSError("timed out waiting for event %d" % event)
        time.sleep_ms(1)
    return events.pop(event)


ble = bluetooth.BLE()
ble.active(True)
ble.irq(irq)
ble.gap_advertise(50_000, b"\x02\x01\x06\x0a\x09mpy-l2cap")
print("advertising, listening on PSM", _PSM)
conn = wait(_IRQ_CENTRAL_CONNECT)[0]
ble.l2cap_listen(_PSM, _MTU)
conn, cid, psm, our_mtu, peer_mtu = wait(_IRQ_L2CAP_CONNECT)

buf = bytearray(_MTU)
received = 0
errors = 0
t_first = None
t0 = time.ticks_ms()
while received < _TOTAL:
    n = ble.l2cap_recvinto(conn, cid, buf)
    if n == 0:
        if time.ticks_diff(time.ticks_ms(), t0) > _TIMEOUT_MS:
            raise OSError("transfer stalled at %d bytes" % received)
        time.sleep_ms(1)
        continue
    if t_first is None:
        t_first = time.ticks_ms()
    for i in range(n):
        if buf[i] != (received + i) & 0xFF:
            errors += 1
    received += n
ms = max(1, time.ticks_diff(time.ticks_ms(), t_first))
print("received", received, "bytes,", errors, "wrong, in", ms, "ms:", received * 8 // ms, "kbit/s")
wait(_IRQ_L2CAP_DISCONNECT)
print("channel closed")
wait(_IRQ_CENTRAL_DISCONNECT)
ble.active(False)
