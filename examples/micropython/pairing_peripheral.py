# Pairing with a passkey, peripheral side: a characteristic that can only be read over an
# encrypted, authenticated link. This board has a display (io DISPLAY_ONLY): when the central
# pairs, _IRQ_PASSKEY_ACTION asks it to show a passkey, which the user types on the central.
# Bonding keys are kept by the _IRQ_SET_SECRET / _IRQ_GET_SECRET handlers (here in memory; on
# a board you would write them to a file).
# Runs unchanged on a MicroPython board with pairing, or with `blebridge run pairing_peripheral.py`.

import bluetooth
import time
from micropython import const

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_READ_REQUEST = const(4)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IRQ_PASSKEY_ACTION = const(31)

_FLAG_READ = const(0x0002)
_FLAG_READ_ENCRYPTED = const(0x0200)
_FLAG_READ_AUTHENTICATED = const(0x0400)

_IO_CAPABILITY_DISPLAY_ONLY = const(0)
_PASSKEY_ACTION_DISPLAY = const(3)

# On a real device this is random each time and shown on the display.
PASSKEY = const(123456)

SECRET_UUID = bluetooth.UUID("7e1a0002-5c4b-4d55-9a1e-000000000002")
SERVICE = (
    bluetooth.UUID("7e1a0002-5c4b-4d55-9a1e-000000000001"),
    ((SECRET_UUID, _FLAG_READ | _FLAG_READ_ENCRYPTED | _FLAG_READ_AUTHENTICATED),),
)

secrets = {}
state = {"done": False}


def irq(event, data):
    if event == _IRQ_CENTRAL_CONNECT:
        print("central connected")
    elif event == _IRQ_CENTRAL_DISCONNECT:
        print("central disconnected")
        state["done"] = True
    elif event == _IRQ_PASSKEY_ACTION:
        conn, action, passkey = data
        if action == _PASSKEY_ACTION_DISPLAY:
            print("passkey shown on the display:", PASSKEY)
            ble.gap_passkey(conn, action, PASSKEY)
    elif event == _IRQ_ENCRYPTION_UPDATE:
        conn, encrypted, authenticated, bonded, key_size = data
        print("encryption update: encrypted", encrypted, "authenticated", authenticated,
              "bonded", bonded, "key size", key_size)
    elif event == _IRQ_GATTS_READ_REQUEST:
        print("central reads the secret")
    elif event == _IRQ_SET_SECRET:
        sec_type, key, value = data
        key = (sec_type, bytes(key))
        if value is None:
            secrets.pop(key, None)
        else:
            secrets[key] = bytes(value)
        return True
    elif event == _IRQ_GET_SECRET:
        sec_type, index, key = data
        if key is None:
            matches = [v for (t, k), v in secrets.items() if t == sec_type]
            return matches[index] if index < len(matches) else None
        return secrets.get((sec_type, bytes(key)))


ble = bluetooth.BLE()
ble.config(io=_IO_CAPABILITY_DISPLAY_ONLY, mitm=True, le_secure=True, bond=True)
ble.active(True)
ble.irq(irq)
((secret_handle,),) = ble.gatts_register_services((SERVICE,))
ble.gatts_write(secret_handle, "the cake is a lie")
ble.gap_advertise(100_000, b"\x02\x01\x06\x0b\x09mpy-secure")
print("advertising; the secret needs an authenticated link")
while not state["done"]:
    time.sleep_ms(20)
ble.active(False)
