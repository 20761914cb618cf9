"""As adafruit-circuitpython-ble-heart-rate's ble_heart_rate_simpletest.py: find a heart-rate
sensor, print its device information and location, then READINGS measurements; then leave."""
import sys
import time

import adafruit_ble
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
from adafruit_ble.services.standard.device_info import DeviceInfoService
from adafruit_ble_heart_rate import HeartRateService

READINGS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ble = adafruit_ble.BLERadio()
hr_connection = None
for adv in ble.start_scan(ProvideServicesAdvertisement, timeout=30):
    if HeartRateService in adv.services:
        hr_connection = ble.connect(adv)
        print("Connected")
        break
ble.stop_scan()
if DeviceInfoService in hr_connection:
    dis = hr_connection[DeviceInfoService]
    print("Device:", dis.manufacturer, dis.model_number)
else:
    print("No device information")
hr_service = hr_connection[HeartRateService]
print("Location:", hr_service.location)
readings = 0
while hr_connection.connected and readings < READINGS:
    values = hr_service.measurement_values
    if values is not None:
        print(values)
        readings += 1
    time.sleep(0.1)
hr_connection.disconnect()
print("done")
