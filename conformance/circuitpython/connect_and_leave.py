"""Central for ble_advertising_simpletest.py: connect to the HELLO advertiser, wait, leave."""
import time

from adafruit_ble import BLERadio
from adafruit_ble.advertising import Advertisement

ble = BLERadio()
for adv in ble.start_scan(Advertisement, timeout=30):
    if adv.short_name == "HELLO" or adv.complete_name == "HELLO":
        ble.stop_scan()
        connection = ble.connect(adv)
        print("connected to HELLO")
        time.sleep(1)
        connection.disconnect()
        print("left")
        break
else:
    print("HELLO not found")
