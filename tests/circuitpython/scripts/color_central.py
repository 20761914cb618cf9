"""As Adafruit's ble_demo_central.py, with fixed colours for the accelerometer's: send three
ColorPackets to the first UART peripheral, then leave."""
import time

from adafruit_bluefruit_connect.color_packet import ColorPacket

from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
from adafruit_ble.services.nordic import UARTService

ble = BLERadio()
uart_connection = None
for adv in ble.start_scan(ProvideServicesAdvertisement, timeout=30):
    if UARTService in adv.services:
        uart_connection = ble.connect(adv)
        break
ble.stop_scan()
for color in ((255, 0, 0), (0, 255, 0), (1, 2, 3)):
    uart_connection[UARTService].write(ColorPacket(color).to_bytes())
    time.sleep(0.3)
# The last packet has reached the peripheral once it has printed it; leave a margin for that.
time.sleep(1)
uart_connection.disconnect()
print("done")
