"""As Adafruit's ble_hid_periph.py: a BLE keyboard that types TEXT once a central is connected
and ready (it turns Num Lock on through the keyboard's LED output report once it has
subscribed to the key reports), then waits for it to leave."""
import sys
import time

from adafruit_hid.keyboard import Keyboard
from adafruit_hid.keyboard_layout_us import KeyboardLayoutUS

import adafruit_ble
from adafruit_ble.advertising import Advertisement
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
from adafruit_ble.services.standard.device_info import DeviceInfoService
from adafruit_ble.services.standard.hid import HIDService

TEXT = sys.argv[1] if len(sys.argv) > 1 else "Hello 42\n"
hid = HIDService()
device_info = DeviceInfoService(software_revision=adafruit_ble.__version__,
                                manufacturer="Adafruit Industries")
advertisement = ProvideServicesAdvertisement(hid)
advertisement.appearance = 961
ble = adafruit_ble.BLERadio()
ble.start_advertising(advertisement, Advertisement())
print("advertising")
k = Keyboard(hid.devices)
kl = KeyboardLayoutUS(k)
while not ble.connected:
    pass
while ble.connected and not k.led_on(Keyboard.LED_NUM_LOCK):
    time.sleep(0.05)
print("typing")
kl.write(TEXT)
while ble.connected:
    time.sleep(0.05)
print("disconnected")
