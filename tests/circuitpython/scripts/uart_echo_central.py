"""As Adafruit's ble_uart_echo_client.py: find the UART service, send "echo" ROUNDS times,
print what comes back, then disconnect."""
import sys

from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
from adafruit_ble.services.nordic import UARTService

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ble = BLERadio()
connection = None
for advertisement in ble.start_scan(ProvideServicesAdvertisement, timeout=30):
    if UARTService in advertisement.services:
        connection = ble.connect(advertisement)
        break
ble.stop_scan()
print("connected", connection is not None and connection.connected)
uart = connection[UARTService]
for _ in range(ROUNDS):
    uart.write(b"echo")
    reply = b""
    while len(reply) < 4 and connection.connected:
        reply += uart.read(4 - len(reply)) or b""   # a loaded PC may take more than 1 s
    print(reply)
connection.disconnect()
print("done")
