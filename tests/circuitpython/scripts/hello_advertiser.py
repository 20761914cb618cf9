"""As Adafruit's ble_advertising_simpletest.py: advertise the short name HELLO, connectable;
print "connected" and "disconnected" as a central comes and goes; ends after one visit."""
from adafruit_ble import BLERadio
from adafruit_ble.advertising import Advertisement

ble = BLERadio()
advertisement = Advertisement()
advertisement.short_name = "HELLO"
advertisement.connectable = True
ble.start_advertising(advertisement, scan_response=b"")
print("advertising")
while not ble.connected:
    pass
print("connected")
while ble.connected:
    pass
print("disconnected")
