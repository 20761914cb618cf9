# Temperature sensor peripheral with adafruit_ble (GATT server, notify, a writable setting).
#
# Advertises the Environmental Sensing service of sensor_service.py, waits for a central, then
# sets a new temperature every interval_ms (the central may change it), which notifies the
# subscribed central, until the central disconnects.
#
#   blebridge run --port sim:sensor examples/circuitpython/sensor_peripheral.py
#   python examples/circuitpython/sensor_peripheral.py --port sim:sensor
# (and unchanged on a CircuitPython board, with sensor_service.py beside it).

import sys

if sys.implementation.name != "circuitpython":
    # Plain CPython: blebridge's _bleio (not Blinka's) on the board given by --port.
    import os
    if "--port" in sys.argv:
        os.environ["BLEBRIDGE_PORT"] = sys.argv[sys.argv.index("--port") + 1]
    import blebridge.circuitpython  # noqa: F401

import random
import time

from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement

from sensor_service import SensorService

ble = BLERadio()
ble.name = "cp-sensor"
sensor = SensorService()
ble.start_advertising(ProvideServicesAdvertisement(sensor))
print("advertising as", ble.name)
while not ble.connected:
    time.sleep(0.05)
print("connected")
centi_degrees = 2450
while ble.connected:
    centi_degrees += random.randint(-20, 20)
    sensor.temperature = centi_degrees
    time.sleep(sensor.interval_ms / 1000)
print("disconnected; the last interval was", sensor.interval_ms, "ms")
