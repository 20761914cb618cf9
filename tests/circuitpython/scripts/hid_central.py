"""Central for hid_peripheral.py (and Adafruit's ble_hid_periph.py): find the HID keyboard,
pair, subscribe to its key reports, turn Num Lock on (the peripheral's cue), print each typed
line as "typed: TEXT"; leaves after LINES lines.

The first HID Report characteristic (0x2A4D) with notify is the keyboard's input report and the
first with write its LED output report, in adafruit_ble's default report map (report ID 1).
Decodes the US layout's letters, digits, space and Enter (USB HID usage page 0x07).
"""
import sys

import _bleio
from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
from adafruit_ble.services.standard.hid import HIDService

LINES = int(sys.argv[1]) if len(sys.argv) > 1 else 1
#: Key report bytes (modifier byte, reserved, six key codes).
REPORT_LEN = 8
SHIFT = 0x02 | 0x20
REPORT_UUID = _bleio.UUID(0x2A4D)
NUM_LOCK = b"\x01"


def key_char(code, shifted):
    if 0x04 <= code <= 0x1D:
        c = chr(ord("a") + code - 0x04)
        return c.upper() if shifted else c
    if 0x1E <= code <= 0x26:
        return chr(ord("1") + code - 0x1E)
    return {0x27: "0", 0x28: "\n", 0x2C: " "}.get(code, "")


ble = BLERadio()
connection = None
for adv in ble.start_scan(ProvideServicesAdvertisement, timeout=30):
    if HIDService in adv.services:
        ble.stop_scan()
        connection = ble.connect(adv)
        break
if connection is None:
    raise SystemExit("no HID peripheral found")
connection.pair()
print("paired", connection.paired)
(service,) = connection._bleio_connection.discover_remote_services((HIDService.uuid.bleio_uuid,))
reports = [c for c in service.characteristics if c.uuid == REPORT_UUID]
keys = [c for c in reports if c.properties & _bleio.Characteristic.NOTIFY][0]
# A CharacteristicBuffer takes the notifications; subscribing is the client's own step (as
# adafruit_ble's StreamIn.bind does it).
keys.set_cccd(notify=True)
keys_in = _bleio.CharacteristicBuffer(keys, buffer_size=256, timeout=1)
leds_out = [c for c in reports if c.properties & _bleio.Characteristic.WRITE][0]
leds_out.value = NUM_LOCK
print("subscribed")
line = ""
held = set()
lines = 0
while connection.connected and lines < LINES:
    report = keys_in.read(REPORT_LEN)
    if not report or len(report) < REPORT_LEN:
        continue
    pressed = {k for k in report[2:] if k}
    for code in sorted(pressed - held):
        c = key_char(code, report[0] & SHIFT)
        if c == "\n":
            print("typed:", line)
            line = ""
            lines += 1
        else:
            line += c
    held = pressed
if connection.connected:
    connection.disconnect()
print("done")
