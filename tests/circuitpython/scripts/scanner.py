"""As Adafruit's ble_simpletest.py and ble_detailed_scan.py: print each device's advertisement
once (with ProvideServicesAdvertisement too when given "detailed"), until HELLO was seen; then
connect to it, and leave once a line arrives on stdin (the test sends it when the advertiser has
printed "connected": a connection shorter than its polling loop's turn would go unseen)."""
import sys

from adafruit_ble import BLERadio
from adafruit_ble.advertising import Advertisement
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement

types = (ProvideServicesAdvertisement, Advertisement) if "detailed" in sys.argv[1:] else ()
ble = BLERadio()
found = set()
hello = None
for advertisement in ble.start_scan(*types, timeout=30):
    addr = advertisement.address
    if advertisement.scan_response or addr in found:
        continue
    found.add(addr)
    print(addr, advertisement)
    if "short_name=HELLO" in str(advertisement):
        hello = advertisement
        break
ble.stop_scan()
connection = ble.connect(hello)
print("connected", connection.connected)
sys.stdin.readline()
connection.disconnect()
print("done")
