# Pairing with a passkey, central side: connects to pairing_peripheral.py's board, shows that
# the secret cannot be read before pairing, pairs (io KEYBOARD_ONLY: the user types the
# passkey the peripheral displays; here it is the known PASSKEY), then reads the secret.
# Runs unchanged on a MicroPython board with pairing, or with `blebridge run pairing_central.py`.

import bluetooth
import time
from micropython import const

_IRQ_SCAN_RESULT = const(5)
_IRQ_SCAN_DONE = const(6)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GATTC_CHARACTERISTIC_RESULT = const(11)
_IRQ_GATTC_CHARACTERISTIC_DONE = const(12)
_IRQ_GATTC_READ_RESULT = const(15)
_IRQ_GATTC_READ_DONE = const(16)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IRQ_PASSKEY_ACTION = const(31)

_IO_CAPABILITY_KEYBOARD_ONLY = const(2)
_PASSKEY_ACTION_INPUT = const(2)
_PASSKEY_ACTION_NUMERIC_COMPARISON = const(4)

PASSKEY = const(123456)   # what the user reads off the peripheral's display
SECRET_UUID = bluetooth.UUID("7e1a0002-5c4b-4d55-9a1e-000000000002")
_TIMEOUT_MS = const(10_000)

events = {}
state = {"peer": None, "value": None, "secret": None}
secrets = {}


def irq(event, data):
    if event == _IRQ_SCAN_RESULT:
        addr_type, addr, adv_type, rssi, adv_data = data
        if state["peer"] is None and b"mpy-secure" in bytes(adv_data):
            state["peer"] = (addr_type, bytes(addr))
            ble.gap_scan(None)
        return None
    if event == _IRQ_PASSKEY_ACTION:
        conn, action, passkey = data
        if action == _PASSKEY_ACTION_INPUT:
            print("typing the passkey shown on the peripheral:", PASSKEY)
            ble.gap_passkey(conn, action, PASSKEY)
        elif action == _PASSKEY_ACTION_NUMERIC_COMPARISON:
            print("confirming passkey", passkey)
            ble.gap_passkey(conn, action, 1)
    elif event == _IRQ_GATTC_CHARACTERISTIC_RESULT:
        if data[4] == SECRET_UUID:
            state["secret"] = data[2]
    elif event == _IRQ_GATTC_READ_RESULT:
        state["value"] = bytes(data[2])
    elif event == _IRQ_ENCRYPTION_UPDATE:
        conn, encrypted, authenticated, bonded, key_size = data
        print("encryption update: encrypted", encrypted, "authenticated", authenticated,
              "bonded", bonded, "key size", key_size)
    elif event == _IRQ_SET_SECRET:
        sec_type, key, value = data
        if value is None:
            secrets.pop((sec_type, bytes(key)), None)
        else:
            secrets[(sec_type, bytes(key))] = bytes(value)
        return True
    elif event == _IRQ_GET_SECRET:
        sec_type, index, key = data
        if key is None:
            matches = [v for (t, k), v in secrets.items() if t == sec_type]
            return matches[index] if index < len(matches) else None
        return secrets.get((sec_type, bytes(key)))
    events[event] = data
    return None


def wait(event):
    t0 = time.ticks_ms()
    while event not in events:
        if time.ticks_diff(time.ticks_ms(), t0) > _TIMEOUT_MS:
            raise OSError("timed out waiting for event %d" % event)
        time.sleep_ms(5)
    return events.pop(event)


ble = bluetooth.BLE()
ble.config(io=_IO_CAPABILITY_KEYBOARD_ONLY, mitm=True, le_secure=True, bond=True)
ble.active(True)
ble.irq(irq)
ble.gap_scan(5000, 30000, 30000, True)
wait(_IRQ_SCAN_DONE)
if state["peer"] is None:
    raise OSError("no pairing peripheral found")
ble.gap_connect(*state["peer"])
conn = wait(_IRQ_PERIPHERAL_CONNECT)[0]
print("connected")
ble.gattc_discover_characteristics(conn, 1, 0xFFFF)
wait(_IRQ_GATTC_CHARACTERISTIC_DONE)

ble.gattc_read(conn, state["secret"])
status = wait(_IRQ_GATTC_READ_DONE)[2]
print("read before pairing: ATT status 0x%02x" % status)

ble.gap_pair(conn)
wait(_IRQ_ENCRYPTION_UPDATE)
ble.gattc_read(conn, state["secret"])
status = wait(_IRQ_GATTC_READ_DONE)[2]
print("read after pairing: status", status, "value", state["value"])

ble.gap_disconnect(conn)
wait(_IRQ_PERIPHERAL_DISCONNECT)
print("disconnected; keys kept:", len(secrets))
ble.active(False)
