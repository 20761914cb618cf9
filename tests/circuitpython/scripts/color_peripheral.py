"""As Adafruit's ble_demo_periph.py, without the NeoPixels: print the colour of each Bluefruit
Connect ColorPacket that arrives on the UART service, and answer "ok" (so the central knows it
was taken before it leaves); ends once the central has left."""
from adafruit_bluefruit_connect.color_packet import ColorPacket
from adafruit_bluefruit_connect.packet import Packet

from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
from adafruit_ble.services.nordic import UARTService

ble = BLERadio()
uart = UARTService()
ble.start_advertising(ProvideServicesAdvertisement(uart))
print("advertising")
while not ble.connected:
    pass
while ble.connected:
    packet = Packet.from_stream(uart)
    if isinstance(packet, ColorPacket):
        print("color", packet.color)
        uart.write(b"ok\n")
print("disconnected")
