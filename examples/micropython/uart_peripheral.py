# Nordic UART Service peripheral (write + notify): every line a central writes to RX is sent
# back upper-cased on TX as a notification. RX buffers writes in append mode, so a line may
# arrive in several writes. Serves one central, then stops.
# Runs unchanged on a MicroPython board, or on a PC with `blebridge run uart_peripheral.py`.

import bluetooth
import time
from micropython import const

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)

_FLAG_READ = const(0x0002)
_FLAG_WRITE_NO_RESPONSE = const(0x0004)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)

UART_UUID = bluetooth.UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E")
UART_TX = (bluetooth.UUID("6E400003-B5A3-F393-E0A9-E50E24DCCA9E"), _FLAG_READ | _FLAG_NOTIFY)
UART_RX = (bluetooth.UUID("6E400002-B5A3-F393-E0A9-E50E24DCCA9E"), _FLAG_WRITE | _FLAG_WRITE_NO_RESPONSE)
UART_SERVICE = (UART_UUID, (UART_TX, UART_RX))

_RX_BUFFER = const(200)
# A notification carries at most MTU - 3 bytes (20 without an MTU exchange).
_CHUNK = const(20)


class UartPeripheral:
    def __init__(self, ble, name="mpy-uart"):
        self._ble = ble
        self.conn = None
        self.finished = False
        self._pending = b""
        ble.active(True)
        ble.irq(self._irq)
        ((self._tx, self._rx),) = ble.gatts_register_services((UART_SERVICE,))
        ble.gatts_set_buffer(self._rx, _RX_BUFFER, True)
        name_field = bytes((len(name) + 1, 0x09)) + name.encode()
        uuid_field = bytes((17, 0x07)) + bytes(UART_UUID)
        ble.gap_advertise(100_000, b"\x02\x01\x06" + name_field, resp_data=uuid_field)
        print("advertising the UART service")

    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            self.conn = data[0]
            print("central connected")
        elif event == _IRQ_CENTRAL_DISCONNECT:
            self.conn = None
            self.finished = True
            print("central disconnected")
        elif event == _IRQ_GATTS_WRITE and data[1] == self._rx:
            self._pending += self._ble.gatts_read(self._rx)
            while b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                print("received:", line.decode())
                reply = line.upper() + b"\n"
                for start in range(0, len(reply), _CHUNK):
                    self._ble.gatts_notify(self.conn, self._tx, reply[start : start + _CHUNK])


ble = bluetooth.BLE()
uart = UartPeripheral(ble)
while not uart.finished:
    time.sleep_ms(20)
ble.active(False)
