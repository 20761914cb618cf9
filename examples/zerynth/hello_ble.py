# Hello BLE, in Zerynth's style: a custom 128-bit service with a writable value, the GAP
# callbacks, and advertising for two seconds; then the script ends.
import streams
from espressif.esp32ble import esp32ble as bledrv
from wireless import ble

streams.serial()

BASE = bytes([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x00, 0x00, 0x0F, 0x10])


def value_changed(status, value):
    print("Value changed to", value)


def connected(addr):
    print("Connected to", ble.btos(addr))


def disconnected(addr):
    print("Disconnected from", ble.btos(addr))
    ble.start_advertising()


def advertising_started(data):
    print("Advertising started")


bledrv.init()
ble.gap("Hello")
ble.add_callback(ble.EVT_CONNECTED, connected)
ble.add_callback(ble.EVT_DISCONNECTED, disconnected)
ble.add_callback(ble.EVT_ADV_STARTED, advertising_started)
hello = ble.Service(0xA001, BASE)       # 100FA001-0C0B-0A09-0807-060504030201
greeting = ble.Characteristic(0x2A3D, ble.READ | ble.WRITE, 20, "Greeting", ble.STRING)
greeting.set_callback(value_changed)
hello.add_characteristic(greeting)
ble.add_service(hello)
greeting.set_value("Hello BLE")
ble.start()
ble.advertising(100)
ble.start_advertising()
print("Greeting is", greeting.get_value())
sleep(2000)
ble.stop_advertising()
print("Bye")
