"""As Adafruit's ble_json_peripheral.py: publish readings in the unit the central sets; ends
once the central has left."""
import time

from json_service import SensorService

from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement

ble = BLERadio()
service = SensorService()
service.sensors = {"temperature": 0.0, "n": 0}
ble.start_advertising(ProvideServicesAdvertisement(service))
print("advertising")
while not ble.connected:
    pass
n = 0
while ble.connected:
    unit = service.settings.get("unit", "celsius")
    n += 1
    service.sensors = {"temperature": 20.5 if unit == "celsius" else 68.9, "n": n}
    time.sleep(0.05)
print("settings", service.settings)
