# The service of sensor_peripheral.py and sensor_central.py, with adafruit_ble: Environmental
# Sensing (0x181A) with its Temperature characteristic (0x2A6E: sint16 in 0.01 degC, read +
# notify) and a writable measurement interval (a vendor characteristic, uint16 ms).
#
# A central binds the temperature to a _bleio.PacketBuffer (each notification one reading, none
# lost between two reads); the peripheral sets it as a plain Int16 value, which notifies.

import _bleio
from adafruit_ble.characteristics import Characteristic, ComplexCharacteristic
from adafruit_ble.characteristics.int import Int16Characteristic, Uint16Characteristic
from adafruit_ble.services import Service
from adafruit_ble.uuid import StandardUUID, VendorUUID

#: Readings a central's PacketBuffer keeps until they are read.
READINGS_BUFFERED = 8


class NotifiedTemperature(ComplexCharacteristic):
    """The temperature as a central sees it: a PacketBuffer of notified readings."""

    uuid = StandardUUID(0x2A6E)

    def __init__(self):
        super().__init__(properties=Characteristic.READ | Characteristic.NOTIFY, max_length=2,
                         fixed_length=True)

    def bind(self, service):
        bound = super().bind(service)
        if service.remote:
            bound.set_cccd(notify=True)
        return _bleio.PacketBuffer(bound, buffer_size=READINGS_BUFFERED)


class SensorService(Service):
    uuid = StandardUUID(0x181A)
    temperature = Int16Characteristic(uuid=StandardUUID(0x2A6E),
                                      properties=Characteristic.READ | Characteristic.NOTIFY)
    interval_ms = Uint16Characteristic(uuid=VendorUUID("5e2a0001-8c43-4b87-9c0c-2d3f1c6a7b10"),
                                       properties=Characteristic.READ | Characteristic.WRITE,
                                       initial_value=1000)


class SensorClient(SensorService):
    """SensorService as a central binds it: the temperature notified into a PacketBuffer."""

    temperature = NotifiedTemperature()
