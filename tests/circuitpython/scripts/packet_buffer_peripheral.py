"""As Adafruit's ble_packet_buffer_test.py: send each packet back; ends once the central left."""
from packet_buffer_service import PacketBufferService

from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement

ble = BLERadio()
pbs = PacketBufferService()
ble.start_advertising(ProvideServicesAdvertisement(pbs))
print("advertising")
buf = bytearray(512)
while not ble.connected:
    pass
while ble.connected:
    packet_len = pbs.readinto(buf)
    if packet_len > 0:
        pbs.write(buf[:packet_len])
print("disconnected")
