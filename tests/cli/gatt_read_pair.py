"""Run with `blebridge run gatt_read_pair.py PERIPHERAL_PORT CENTRAL_PORT`: the peripheral
advertises a service with a readable characteristic; the central connects to it and reads the
value with a GATT read; prints "read VALUE" and exits 0."""
import sys
import time

import bluetooth

VALUE = b"hello-capture"
SVC = bluetooth.UUID("7e1a0005-5c4b-4d55-9a1e-000000000001")
CHR = bluetooth.UUID("7e1a0005-5c4b-4d55-9a1e-000000000002")
#: Seconds each step may take (generous: the machine is loaded).
STEP_TIMEOUT_S = 30

_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_GATTC_READ_RESULT = 15
_IRQ_GATTC_READ_DONE = 16

peripheral = bluetooth.BLE(port=sys.argv[1])
central = bluetooth.BLE(port=sys.argv[2])
peripheral.active(True)
central.active(True)
((handle,),) = peripheral.gatts_register_services(((SVC, ((CHR, bluetooth.FLAG_READ),)),))
peripheral.gatts_write(handle, VALUE)
peripheral.gap_advertise(20_000, b"\x02\x01\x06\x08\x09capture")
addr_type, addr = peripheral.config("mac")

events = {}


def irq(event, data):
    if event == _IRQ_PERIPHERAL_CONNECT:
        events["conn"] = data[0]
    elif event == _IRQ_GATTC_READ_RESULT:
        events["value"] = bytes(data[2])
    elif event == _IRQ_GATTC_READ_DONE:
        events["done"] = data[2]


def wait(key):
    deadline = time.time() + STEP_TIMEOUT_S
    while key not in events:
        if time.time() > deadline:
            sys.exit(f"no {key} within {STEP_TIMEOUT_S} s")
        time.sleep_ms(10)
    return events[key]


central.irq(irq)
central.gap_connect(addr_type, addr)
conn = wait("conn")
central.gattc_read(conn, handle)
wait("done")
print("read", wait("value").decode())
central.gap_disconnect(conn)
