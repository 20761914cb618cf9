"""As Adafruit's ble_demo_central.py, with fixed colours for the accelerometer's: send three
ColorPackets to the first UART peripheral (each answered "ok"), then leave."""
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
uart = uart_connection[UARTService]
for color in ((255, 0, 0), (0, 255, 0), (1, 2, 3)):
    uart.write(ColorPacket(color).to_bytes())
    answer = b""
    while not answer.endswith(b"\n") and uart_connection.connected:
        answer += uart.readline() or b""      # a loaded PC may take more than its 1 s timeout
    print("answer", answer)
uart_connection.disconnect()
print("done")
