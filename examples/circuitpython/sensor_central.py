# Temperature sensor central with adafruit_ble (scan, connect, GATT client, notifications).
#
# Scans for the Environmental Sensing service of sensor_service.py, connects, asks for a reading
# every 200 ms (writes the interval, when the sensor has that setting), prints READINGS notified
# temperatures, then disconnects. Reads examples/aioble/sensor_peripheral.py's sensor too.
#
#   blebridge run --port sim:client examples/circuitpython/sensor_central.py
#   python examples/circuitpython/sensor_central.py --port sim:client

import sys

if sys.implementation.name != "circuitpython":
    import os
    if "--port" in sys.argv:
        os.environ["BLEBRIDGE_PORT"] = sys.argv[sys.argv.index("--port") + 1]
    import blebridge.circuitpython  # noqa: F401

import struct

from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement

from sensor_service import SensorClient, SensorService

READINGS = 5
SCAN_S = 10
INTERVAL_MS = 200

ble = BLERadio()
connection = None
for adv in ble.start_scan(ProvideServicesAdvertisement, timeout=SCAN_S):
    if SensorService in adv.services:
        print("connecting to", adv.complete_name or adv.address)
        connection = ble.connect(adv)
        break
ble.stop_scan()
if connection is None:
    print("no sensor found")
    sys.exit(1)

sensor = connection[SensorClient]
try:
    sensor.interval_ms = INTERVAL_MS
except AttributeError:   # a sensor without the setting (examples/aioble/sensor_peripheral.py)
    print("the sensor has no interval setting")
packet = bytearray(sensor.temperature.incoming_packet_length)
readings = 0
while readings < READINGS and connection.connected:
    if sensor.temperature.readinto(packet):
        (centi_degrees,) = struct.unpack_from("<h", packet)
        print("notified temperature: {:.2f} degC".format(centi_degrees / 100))
        readings += 1
connection.disconnect()
print("done")
