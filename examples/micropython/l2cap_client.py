# L2CAP connection-oriented channel client: finds l2cap_server.py's board by name, connects,
# opens a channel on _PSM and sends _TOTAL bytes (a counting pattern) in SDUs as large as the
# peer's MTU, waiting for _IRQ_L2CAP_SEND_READY whenever l2cap_send reports a stall.
# Runs unchanged on a MicroPython board with L2CAP, or with `blebridge run l2cap_client.py`.

import bluetooth
import time
from micropython import const

_IRQ_SCAN_RESULT = const(5)
_IRQ_SCAN_DONE = const(6)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_L2CAP_CONNECT = const(23)
_IRQ_L2CAP_DISCONNECT = const(24)
_IRQ_L2CAP_SEND_READY = const(26)

_PSM = const(0x80)
_MTU = const(512)
_TOTAL = const(64 * 1024)
_TIMEOUT_MS = const(20_000)

events = {}
peer = []


def irq(event, data):
    if event == _IRQ_SCAN_RESULT:
        addr_type, addr, adv_type, rssi, adv_data = data
        if not peer and b"mpy-l2cap" in bytes(adv_data):
            peer.append((addr_type, bytes(addr)))
            ble.gap_scan(None)
        return
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
ble.gap_scan(5000, 30000, 30000)
wait(_IRQ_SCAN_DONE)
if not peer:
    raise OSError("no L2CAP server found")
ble.gap_connect(*peer[0])
conn = wait(_IRQ_PERIPHERAL_CONNECT)[0]
print("connected, opening channel on PSM", _PSM)
time.sleep_ms(200)   # give the server time to listen
ble.l2cap_connect(conn, _PSM, _MTU)
conn, cid, psm, our_mtu, peer_mtu = wait(_IRQ_L2CAP_CONNECT)
print("channel open, peer MTU", peer_mtu)

chunk = min(peer_mtu, _MTU)
sent = 0
t0 = time.ticks_ms()
while sent < _TOTAL:
    n = min(chunk, _TOTAL - sent)
    data = bytes((sent + i) & 0xFF for i in range(n))
    if not ble.l2cap_send(conn, cid, data):
        wait(_IRQ_L2CAP_SEND_READY)
    sent += n
ms = max(1, time.ticks_diff(time.ticks_ms(), t0))
print("sent", sent, "bytes in", ms, "ms:", sent * 8 // ms, "kbit/s")
time.sleep_ms(500)   # let the server drain before the channel goes
ble.l2cap_disconnect(conn, cid)
wait(_IRQ_L2CAP_DISCONNECT)
ble.gap_disconnect(conn)
wait(_IRQ_PERIPHERAL_DISCONNECT)
print("done")
ble.active(False)
