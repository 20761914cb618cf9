"""Central for ble_hid_periph.py: find the HID keyboard, pair, take its key reports and print
what was typed, a line at a time, as "typed: TEXT".

Reads the first HID input report characteristic (Report, 0x2A4D, with notify): in adafruit_ble's
default report map that is the keyboard's (report ID 1, 8 bytes: modifiers, reserved, six key
codes). Decodes the US layout's letters, digits, space and Enter (USB HID usage table 0x07).
"""
import time

import _bleio
from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
from adafruit_ble.services.standard.hid import HIDService

#: Key report bytes (modifier byte, reserved, six key codes).
REPORT_LEN = 8
SHIFT = 0x02 | 0x20
REPORT_UUID = _bleio.UUID(0x2A4D)


def key_char(code, shifted):
    if 0x04 <= code <= 0x1D:
        c = chr(ord("a") + code - 0x04)
        return c.upper() if shifted else c
    if 0x1E <= code <= 0x26:
        return chr(ord("1") + code - 0x1E)
    return {0x27: "0", 0x28: "\n", 0x2C: " "}.get(code, "")


ble = BLERadio()
connection = None
print("scanning")
for adv in ble.start_scan(ProvideServicesAdvertisement, timeout=30):
    if HIDService in adv.services:
        ble.stop_scan()
        connection = ble.connect(adv)
        break
if connection is None:
    raise SystemExit("no HID peripheral found")
print("connected")
connection.pair()
print("paired", connection.paired)
bleio_connection = connection._bleio_connection
(service,) = bleio_connection.discover_remote_services((HIDService.uuid.bleio_uuid,))
reports = [c for c in service.characteristics
           if c.uuid == REPORT_UUID and c.properties & _bleio.Characteristic.NOTIFY]
keys_in = _bleio.CharacteristicBuffer(reports[0], buffer_size=256, timeout=1)
print("subscribed")
line = ""
held = set()
while connection.connected:
    report = keys_in.read(REPORT_LEN)
    if not report or len(report) < REPORT_LEN:
        continue
    pressed = {k for k in report[2:] if k}
    for code in sorted(pressed - held):
        c = key_char(code, report[0] & SHIFT)
        if c == "\n":
            print("typed:", line)
            line = ""
        else:
            line += c
    held = pressed
