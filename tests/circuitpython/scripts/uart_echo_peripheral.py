"""As Adafruit's ble_uart_echo_test.py: echo what arrives on the UART service; ends once the
central that connected has left."""
from adafruit_ble import BLERadio
from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
from adafruit_ble.services.nordic import UARTService

ble = BLERadio()
uart = UARTService()
ble.start_advertising(ProvideServicesAdvertisement(uart))
print("advertising")
while not ble.connected:
    pass
print("connected")
while ble.connected:
    one_byte = uart.read(1)
    if one_byte:
        uart.write(one_byte)
print("disconnected")
