"""A CircuitPython UART central (adafruit_ble) for examples/micropython/uart_peripheral.py:
send lines, print the peripheral's upper-cased replies, leave."""
from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
from adafruit_ble.services.nordic import UARTService

ble = BLERadio()
connection = None
for adv in ble.start_scan(ProvideServicesAdvertisement, timeout=30):
    if UARTService in adv.services:
        connection = ble.connect(adv)
        break
ble.stop_scan()
uart = connection[UARTService]
for line in (b"hello\n", b"circuitpython meets micropython\n"):
    uart.write(line)
    reply = b""
    while not reply.endswith(b"\n") and connection.connected:
        reply += uart.readline() or b""      # a loaded PC may take more than its 1 s timeout
    print("reply:", reply)
connection.disconnect()
print("done")
