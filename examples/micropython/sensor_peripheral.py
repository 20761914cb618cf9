# Temperature sensor peripheral (GATT server with notify).
#
# Advertises the Environmental Sensing service (0x181A) with a Temperature characteristic
# (0x2A6E: sint16, 0.01 degC, read + notify) and a writable measurement interval (ms, uint16).
# A new reading is written every interval with send_update=True, so centrals that subscribed
# (wrote 1 to the CCCD) get a notification. Serves _SESSIONS connections, then stops.
# Runs unchanged on a MicroPython board, or on a PC with `blebridge run sensor_peripheral.py`.

import bluetooth
import struct
import time
from micropython import const

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)

_FLAG_READ = const(0x0002)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)

_ADV_TYPE_FLAGS = const(0x01)
_ADV_TYPE_NAME = const(0x09)
_ADV_TYPE_UUID16_COMPLETE = const(0x03)
_ADV_TYPE_APPEARANCE = const(0x19)
_APPEARANCE_THERMOMETER = const(768)

_SESSIONS = const(1)

ENV_SENSE_UUID = bluetooth.UUID(0x181A)
TEMP_UUID = bluetooth.UUID(0x2A6E)
INTERVAL_UUID = bluetooth.UUID("7e1a0001-5c4b-4d55-9a1e-000000000001")
SERVICE = (
    ENV_SENSE_UUID,
    (
        (TEMP_UUID, _FLAG_READ | _FLAG_NOTIFY),
        (INTERVAL_UUID, _FLAG_READ | _FLAG_WRITE),
    ),
)


def advertising_payload(name, uuid16, appearance):
    payload = bytearray()

    def field(kind, value):
        payload.extend(struct.pack("BB", len(value) + 1, kind) + value)

    field(_ADV_TYPE_FLAGS, b"\x06")
    field(_ADV_TYPE_NAME, name.encode())
    field(_ADV_TYPE_UUID16_COMPLETE, struct.pack("<H", uuid16))
    field(_ADV_TYPE_APPEARANCE, struct.pack("<H", appearance))
    return payload


class TemperatureSensor:
    def __init__(self, ble, name="mpy-temp"):
        self._ble = ble
        self._connections = set()
        self.sessions = 0
        self.interval_ms = 1000
        ble.active(True)
        ble.irq(self._irq)
        ((self._temp_handle, self._interval_handle),) = ble.gatts_register_services((SERVICE,))
        ble.gatts_write(self._interval_handle, struct.pack("<H", self.interval_ms))
        self.set_temperature(21.5)  # a central that connects at once reads a real value
        self._payload = advertising_payload(name, 0x181A, _APPEARANCE_THERMOMETER)
        self._advertise()

    def _advertise(self):
        print("advertising as temperature sensor")
        self._ble.gap_advertise(100_000, self._payload)

    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            conn_handle, _, _ = data
            self._connections.add(conn_handle)
            print("central connected")
        elif event == _IRQ_CENTRAL_DISCONNECT:
            conn_handle, _, _ = data
            self._connections.discard(conn_handle)
            self.sessions += 1
            print("central disconnected")
            if self.sessions < _SESSIONS:
                self._advertise()
        elif event == _IRQ_GATTS_WRITE:
            conn_handle, value_handle = data
            if value_handle == self._interval_handle:
                value = self._ble.gatts_read(value_handle)
                if len(value) == 2:
                    self.interval_ms = struct.unpack("<H", value)[0]
                    print("central set the interval to", self.interval_ms, "ms")

    def set_temperature(self, degrees):
        # send_update: subscribed centrals are notified of the new value.
        self._ble.gatts_write(self._temp_handle, struct.pack("<h", int(degrees * 100)), True)

    def done(self):
        return self.sessions >= _SESSIONS


def main():
    ble = bluetooth.BLE()
    sensor = TemperatureSensor(ble)
    t = 21.5  # the reading set at start-up
    last = time.ticks_ms()
    while not sensor.done():
        if time.ticks_diff(time.ticks_ms(), last) >= sensor.interval_ms:
            last = time.ticks_ms()
            t += 0.25
            sensor.set_temperature(t)
        time.sleep_ms(10)
    ble.active(False)
    print("sensor stopped")


main()
