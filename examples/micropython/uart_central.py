# Nordic UART Service central: finds a UART peripheral by the service UUID in its scan
# response, subscribes to TX, writes a few lines to RX (with and without response) and prints
# what comes back, then disconnects.
# Runs unchanged on a MicroPython board, or on a PC with `blebridge run uart_central.py`.

import bluetooth
import time
from micropython import const

_IRQ_SCAN_RESULT = const(5)
_IRQ_SCAN_DONE = const(6)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GATTC_CHARACTERISTIC_RESULT = const(11)
_IRQ_GATTC_CHARACTERISTIC_DONE = const(12)
_IRQ_GATTC_DESCRIPTOR_RESULT = const(13)
_IRQ_GATTC_DESCRIPTOR_DONE = const(14)
_IRQ_GATTC_WRITE_DONE = const(17)
_IRQ_GATTC_NOTIFY = const(18)

UART_UUID = bluetooth.UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E")
TX_UUID = bluetooth.UUID("6E400003-B5A3-F393-E0A9-E50E24DCCA9E")
RX_UUID = bluetooth.UUID("6E400002-B5A3-F393-E0A9-E50E24DCCA9E")
CCCD_UUID = bluetooth.UUID(0x2902)

LINES = ("hello", "micropython over blebridge", "bye")
# Without an MTU exchange a write carries at most 23 - 3 bytes; longer lines go in pieces
# (the peripheral's RX buffer appends them).
_CHUNK = const(20)
_TIMEOUT_MS = const(10_000)

events = {}
chars = {}
state = {"peer": None, "cccd": None, "received": b""}


def irq(event, data):
    if event == _IRQ_SCAN_RESULT:
        addr_type, addr, adv_type, rssi, adv_data = data
        if state["peer"] is None and bytes(UART_UUID) in bytes(adv_data):
            state["peer"] = (addr_type, bytes(addr))
            ble.gap_scan(None)
    elif event == _IRQ_GATTC_CHARACTERISTIC_RESULT:
        conn, end_handle, value_handle, properties, uuid = data
        chars[bluetooth.UUID(uuid)] = (value_handle, end_handle)
    elif event == _IRQ_GATTC_DESCRIPTOR_RESULT:
        if data[2] == CCCD_UUID and state["cccd"] is None:
            state["cccd"] = data[1]
    elif event == _IRQ_GATTC_NOTIFY:
        state["received"] += bytes(data[2])
    events[event] = data[0] if data else None


def wait(event):
    t0 = time.ticks_ms()
    while event not in events:
        if time.ticks_diff(time.ticks_ms(), t0) > _TIMEOUT_MS:
            raise OSError("timed out waiting for event %d" % event)
        time.sleep_ms(5)
    return events.pop(event)


ble = bluetooth.BLE()
ble.active(True)
ble.irq(irq)
print("scanning for a UART peripheral")
ble.gap_scan(5000, 30000, 30000, True)
wait(_IRQ_SCAN_DONE)
if state["peer"] is None:
    raise OSError("no UART peripheral found")
ble.gap_connect(*state["peer"])
conn = wait(_IRQ_PERIPHERAL_CONNECT)
print("connected")
ble.gattc_discover_characteristics(conn, 1, 0xFFFF)
wait(_IRQ_GATTC_CHARACTERISTIC_DONE)
tx, tx_end = chars[TX_UUID]
rx, _ = chars[RX_UUID]
ble.gattc_discover_descriptors(conn, tx, tx_end)
wait(_IRQ_GATTC_DESCRIPTOR_DONE)
ble.gattc_write(conn, state["cccd"], b"\x01\x00", 1)
wait(_IRQ_GATTC_WRITE_DONE)
print("subscribed to TX")
for i, line in enumerate(LINES):
    print("sending:", line)
    data = line.encode() + b"\n"
    for start in range(0, len(data), _CHUNK):
        # Alternate between write without and with response, to show both.
        ble.gattc_write(conn, rx, data[start : start + _CHUNK], i & 1)
        if i & 1:
            wait(_IRQ_GATTC_WRITE_DONE)
    t0 = time.ticks_ms()
    while state["received"].count(b"\n") <= i:
        if time.ticks_diff(time.ticks_ms(), t0) > _TIMEOUT_MS:
            raise OSError("no answer from the peripheral")
        time.sleep_ms(5)
    print("echoed:", state["received"].split(b"\n")[i].decode())
ble.gap_disconnect(conn)
wait(_IRQ_PERIPHERAL_DISCONNECT)
print("disconnected")
ble.active(False)
