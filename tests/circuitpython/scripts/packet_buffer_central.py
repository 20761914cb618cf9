"""As Adafruit's ble_packet_buffer_client.py: send packets, print what comes back, leave."""
import time

from packet_buffer_service import PacketBufferService

from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement

#: Seconds to wait for one echo.
ECHO_TIMEOUT_S = 30
ble = BLERadio()
connection = None
for adv in ble.start_scan(ProvideServicesAdvertisement, timeout=30):
    if PacketBufferService in adv.services:
        connection = ble.connect(adv)
        break
ble.stop_scan()
pb = connection[PacketBufferService]
buf = bytearray(512)
for packet in (b"echo", b"a longer packet of 40 bytes, one write.."):
    pb.write(packet)
    deadline = time.monotonic() + ECHO_TIMEOUT_S
    n = 0
    while n == 0 and time.monotonic() < deadline:
        n = pb.readinto(buf)
    print(bytes(buf[:n]))
connection.disconnect()
print("done")
