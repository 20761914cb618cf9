"""As Adafruit's ble_json_service.py: a service of two JSON characteristics."""
from adafruit_ble.characteristics import Characteristic
from adafruit_ble.characteristics.json import JSONCharacteristic
from adafruit_ble.services import Service
from adafruit_ble.uuid import VendorUUID


class SensorService(Service):
    uuid = VendorUUID("51ad213f-e568-4e35-84e4-67af89c79ef0")
    settings = JSONCharacteristic(
        uuid=VendorUUID("e077bdec-f18b-4944-9e9e-8b3a815162b4"),
        properties=Characteristic.READ | Characteristic.WRITE,
        initial_value={"unit": "celsius"},
    )
    sensors = JSONCharacteristic(
        uuid=VendorUUID("528ff74b-fdb8-444c-9c64-3dd5da4135ae"),
        properties=Characteristic.READ,
    )

    def __init__(self, service=None):
        super().__init__(service=service)
        self.connectable = True
