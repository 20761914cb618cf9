"""As Adafruit's ble_json_central.py: set the unit, print three readings, leave."""
from json_service import SensorService

from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement

ble = BLERadio()
connection = None
for adv in ble.start_scan(ProvideServicesAdvertisement, timeout=30):
    if SensorService in adv.services:
        connection = ble.connect(adv)
        break
ble.stop_scan()
service = connection[SensorService]
service.settings = {"unit": "fahrenheit"}
seen = []
while len(seen) < 3:
    reading = service.sensors
    if reading["temperature"] == 68.9 and reading["n"] not in seen:
        seen.append(reading["n"])
        print("sensors", reading["temperature"])
connection.disconnect()
print("done")
