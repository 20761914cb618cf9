"""Central for ble_advertising_simpletest.py: connect to the HELLO advertiser, leave once a line
arrives on stdin (the harness sends it when the advertiser has printed "connected": the example
polls ble.connected in a loop, and a connection shorter than its turn would go unseen)."""
import sys

from adafruit_ble import BLERadio
from adafruit_ble.advertising import Advertisement

ble = BLERadio()
for adv in ble.start_scan(Advertisement, timeout=30):
    if adv.short_name == "HELLO" or adv.complete_name == "HELLO":
        ble.stop_scan()
        connection = ble.connect(adv)
        print("connected to HELLO")
        sys.stdin.readline()
        connection.disconnect()
        print("left")
        break
else:
    print("HELLO not found")
