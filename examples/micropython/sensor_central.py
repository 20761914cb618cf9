# Temperature sensor central (GATT client): finds the sensor of sensor_peripheral.py,
# connects, discovers its service, characteristics and CCCD, reads the temperature, writes
# a faster measurement interval, subscribes, prints _READINGS notifications and disconnects.
# Runs unchanged on a MicroPython board, or on a PC with `blebridge run sensor_central.py`.

import bluetooth
import struct
import time
from micropython import const

_IRQ_SCAN_RESULT = const(5)
_IRQ_SCAN_DONE = const(6)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GATTC_SERVICE_RESULT = const(9)
_IRQ_GATTC_SERVICE_DONE = const(10)
_IRQ_GATTC_CHARACTERISTIC_RESULT = const(11)
_IRQ_GATTC_CHARACTERISTIC_DONE = const(12)
_IRQ_GATTC_DESCRIPTOR_RESULT = const(13)
_IRQ_GATTC_DESCRIPTOR_DONE = const(14)
_IRQ_GATTC_READ_RESULT = const(15)
_IRQ_GATTC_READ_DONE = const(16)
_IRQ_GATTC_WRITE_DONE = const(17)
_IRQ_GATTC_NOTIFY = const(18)

_ADV_TYPE_UUID16_COMPLETE = const(0x03)
_ADV_TYPE_NAME = const(0x09)

_READINGS = const(5)
_TIMEOUT_MS = const(10_000)

ENV_SENSE_UUID = bluetooth.UUID(0x181A)
TEMP_UUID = bluetooth.UUID(0x2A6E)
INTERVAL_UUID = bluetooth.UUID("7e1a0001-5c4b-4d55-9a1e-000000000001")
CCCD_UUID = bluetooth.UUID(0x2902)


def adv_fields(payload, kind):
    i, found = 0, []
    while i + 1 < len(payload):
        length = payload[i]
        if payload[i + 1] == kind:
            found.append(bytes(payload[i + 2 : i + 1 + length]))
        i += 1 + length
    return found


class Central:
    def __init__(self, ble):
        self._ble = ble
        self.events = {}
        self.peer = None
        self.conn = None
        self.service = None
        self.handles = {}
        self.cccd = None
        self.readings = []
        ble.active(True)
        ble.irq(self._irq)

    def _irq(self, event, data):
        if event == _IRQ_SCAN_RESULT:
            addr_type, addr, adv_type, rssi, adv_data = data
            if self.peer is None and struct.pack("<H", 0x181A) in adv_fields(adv_data, _ADV_TYPE_UUID16_COMPLETE):
                names = adv_fields(adv_data, _ADV_TYPE_NAME)
                self.peer = (addr_type, bytes(addr), names[0].decode() if names else "?")
                self._ble.gap_scan(None)
        elif event == _IRQ_PERIPHERAL_CONNECT:
            self.conn = data[0]
        elif event == _IRQ_GATTC_SERVICE_RESULT:
            conn, start, end, uuid = data
            if uuid == ENV_SENSE_UUID:
                self.service = (start, end)
        elif event == _IRQ_GATTC_CHARACTERISTIC_RESULT:
            conn, end_handle, value_handle, properties, uuid = data
            self.handles[bluetooth.UUID(uuid)] = (value_handle, end_handle)
        elif event == _IRQ_GATTC_DESCRIPTOR_RESULT:
            conn, handle, uuid = data
            if uuid == CCCD_UUID and self.cccd is None:
                self.cccd = handle
        elif event == _IRQ_GATTC_READ_RESULT:
            self.events["value"] = bytes(data[2])
        elif event == _IRQ_GATTC_NOTIFY:
            self.readings.append(struct.unpack("<h", data[2])[0] / 100)
        self.events[event] = data[-1] if data else None

    def wait(self, event):
        t0 = time.ticks_ms()
        while event not in self.events:
            if time.ticks_diff(time.ticks_ms(), t0) > _TIMEOUT_MS:
                raise OSError("timed out waiting for event %d" % event)
            time.sleep_ms(5)
        return self.events.pop(event)

    def run(self):
        ble = self._ble
        print("scanning for a temperature sensor")
        ble.gap_scan(5000, 30000, 30000, True)
        self.wait(_IRQ_SCAN_DONE)
        if self.peer is None:
            raise OSError("no sensor found")
        print("found", self.peer[2], "at", ":".join("%02x" % b for b in self.peer[1]))
        ble.gap_connect(self.peer[0], self.peer[1])
        self.wait(_IRQ_PERIPHERAL_CONNECT)
        print("connected")

        ble.gattc_discover_services(self.conn)
        self.wait(_IRQ_GATTC_SERVICE_DONE)
        start, end = self.service
        print("service", ENV_SENSE_UUID, "handles", start, "-", end)
        ble.gattc_discover_characteristics(self.conn, start, end)
        self.wait(_IRQ_GATTC_CHARACTERISTIC_DONE)
        temp, temp_end = self.handles[TEMP_UUID]
        interval, _ = self.handles[INTERVAL_UUID]
        ble.gattc_discover_descriptors(self.conn, temp, temp_end)
        self.wait(_IRQ_GATTC_DESCRIPTOR_DONE)
        print("temperature at handle", temp, "CCCD at", self.cccd, "interval at", interval)

        ble.gattc_read(self.conn, temp)
        self.wait(_IRQ_GATTC_READ_DONE)
        print("read temperature: %.2f C" % (struct.unpack("<h", self.events.pop("value"))[0] / 100))

        ble.gattc_write(self.conn, interval, struct.pack("<H", 200), 1)
        print("wrote interval 200 ms, status", self.wait(_IRQ_GATTC_WRITE_DONE))

        ble.gattc_write(self.conn, self.cccd, struct.pack("<H", 1), 1)
        print("subscribed, status", self.wait(_IRQ_GATTC_WRITE_DONE))
        t0 = time.ticks_ms()
        shown = 0
        while len(self.readings) < _READINGS:
            if time.ticks_diff(time.ticks_ms(), t0) > _TIMEOUT_MS:
                raise OSError("timed out waiting for notifications")
            while shown < len(self.readings):
                print("notified temperature: %.2f C" % self.readings[shown])
                shown += 1
            time.sleep_ms(10)
        while shown < _READINGS:
            print("notified temperature: %.2f C" % self.readings[shown])
            shown += 1

        ble.gap_disconnect(self.conn)
        self.wait(_IRQ_PERIPHERAL_DISCONNECT)
        print("disconnected")
        ble.active(False)


Central(bluetooth.BLE()).run()
