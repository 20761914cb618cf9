"""A heart-rate sensor written with MicroPython's ``bluetooth`` module (blebridge run --api
micropython): Heart Rate service (0x180D: measurement 0x2A37 notified, body sensor location
0x2A38 = Chest) and Device Information (0x180A: manufacturer, model number). Notifies a
measurement (contact detected, one RR interval) every 100 ms while a central is connected;
ends once the central has left."""
import struct
import time

import bluetooth
from micropython import const

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_FLAG_READ = const(0x0002)
_FLAG_NOTIFY = const(0x0010)

HR_SERVICE = (bluetooth.UUID(0x180D), (
    (bluetooth.UUID(0x2A37), _FLAG_NOTIFY),
    (bluetooth.UUID(0x2A38), _FLAG_READ),
))
DIS_SERVICE = (bluetooth.UUID(0x180A), (
    (bluetooth.UUID(0x2A29), _FLAG_READ),
    (bluetooth.UUID(0x2A24), _FLAG_READ),
))
#: Measurement flags: sensor contact supported and detected (0x06), RR intervals present (0x10).
_FLAGS = const(0x16)
#: RR interval notified, in 1/1024 s.
_RR = const(1024)
_CHEST = const(1)

state = {"conn": None, "visited": False}


def irq(event, data):
    if event == _IRQ_CENTRAL_CONNECT:
        state["conn"] = data[0]
        state["visited"] = True
    elif event == _IRQ_CENTRAL_DISCONNECT:
        state["conn"] = None


ble = bluetooth.BLE()
ble.active(True)
ble.irq(irq)
((measurement, location), (manufacturer, model)) = ble.gatts_register_services((HR_SERVICE, DIS_SERVICE))
ble.gatts_write(location, bytes((_CHEST,)))
ble.gatts_write(manufacturer, b"blebridge")
ble.gatts_write(model, b"HR-1")
name = b"hr-sensor"
adv = (b"\x02\x01\x06" + bytes((3, 0x03)) + struct.pack("<H", 0x180D)
       + bytes((len(name) + 1, 0x09)) + name)
ble.gap_advertise(100_000, adv)
print("advertising")
bpm = 60
while not state["visited"] or state["conn"] is not None:
    conn = state["conn"]
    if conn is not None:
        try:
            ble.gatts_notify(conn, measurement, struct.pack("<BBH", _FLAGS, bpm, _RR))
        except OSError:
            pass       # the central left between the check and the notification
        bpm = 60 + (bpm - 59) % 10
    time.sleep_ms(100)
print("disconnected")
ble.active(False)
