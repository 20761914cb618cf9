# Peer of the Zerynth peripheral examples, written with MicroPython's `bluetooth` (run with
# `blebridge run --api micropython central.py MODE NAME [PASSKEY]`). Prints what it checked
# and "PEER PASS" at the end; any failure raises (exit status 1).
#
# MODE battery: connects to NAME, finds Battery Service 0x180F / Battery Level 0x2A19 and its
#   User Description, reads the level (0..100), subscribes and takes 2 notifications in range.
# MODE alerts: Alert Notification 0x1811: subscribes to New Alerts 0x2A47 until a notification
#   carries category 0, a count >= 1 and "Zerynth!"; then writes 2,0 and 0,0 to the control
#   point 0x2A44 (the peripheral prints "Notifications disabled" / "enabled").
# MODE secure1: alerts, after pairing as a keyboard (types PASSKEY, MITM, bonding, LESC); the
#   New Alerts read before pairing must fail (encryption required).
# MODE secure2: alerts, after pairing by numeric comparison (display yes/no; accepts).
# MODE reject2: pairs by numeric comparison and expects the pairing to fail (the peripheral
#   does not confirm).
import os
import sys
import time
import bluetooth
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
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_PASSKEY_ACTION = const(31)
_PASSKEY_ACTION_INPUT = const(2)
_PASSKEY_ACTION_NUMERIC_COMPARISON = const(4)

MODE = sys.argv[1]
NAME = sys.argv[2].encode()
PASSKEY = int(sys.argv[3]) if len(sys.argv) > 3 else 0
# The harness names the board to connect to (another board on the air may have the same name).
TARGET = bytes.fromhex(os.environ.get("ZERYNTH_BOARD_ADDR", ""))
TIMEOUT_MS = 60_000

events = {}
notifications = []
found = {"peer": None, "chars": {}, "dscs": {}, "read": None}


def irq(event, data):
    if event == _IRQ_SCAN_RESULT:
        addr_type, addr, adv_type, rssi, adv_data = data
        if found["peer"] is None and NAME in bytes(adv_data) and (not TARGET or bytes(addr) == TARGET):
            found["peer"] = (addr_type, bytes(addr))
            ble.gap_scan(None)
        return
    if event == _IRQ_GATTC_CHARACTERISTIC_RESULT:
        conn, end, value_handle, props, uuid = data
        found["chars"][uuid] = (value_handle, props)
        return
    if event == _IRQ_GATTC_DESCRIPTOR_RESULT:
        found["dscs"][data[2]] = data[1]
        return
    if event == _IRQ_GATTC_READ_RESULT:
        found["read"] = bytes(data[2])
        return
    if event == _IRQ_GATTC_NOTIFY:
        notifications.append(bytes(data[2]))
        return
    if event == _IRQ_PASSKEY_ACTION:
        conn, action, passkey = data
        if action == _PASSKEY_ACTION_INPUT:
            print("PEER typing passkey", PASSKEY)
            ble.gap_passkey(conn, action, PASSKEY)
        elif action == _PASSKEY_ACTION_NUMERIC_COMPARISON:
            print("PEER comparing passkey", passkey)
            ble.gap_passkey(conn, action, 1)
    events[event] = data


def wait(event, timeout_ms=TIMEOUT_MS):
    t0 = time.ticks_ms()
    while event not in events:
        if time.ticks_diff(time.ticks_ms(), t0) > timeout_ms:
            raise OSError("timed out waiting for event %d" % event)
        time.sleep_ms(10)
    return events.pop(event)


def read(conn, handle):
    found["read"] = None
    ble.gattc_read(conn, handle)
    status = wait(_IRQ_GATTC_READ_DONE)[2]
    return status, found["read"]


def write(conn, handle, data):
    ble.gattc_write(conn, handle, data, 1)
    status = wait(_IRQ_GATTC_WRITE_DONE)[2]
    if status != 0:
        raise OSError("write to %d failed: status %d" % (handle, status))


def wait_notification(check, timeout_ms=TIMEOUT_MS):
    t0 = time.ticks_ms()
    while True:
        while notifications:
            value = notifications.pop(0)
            if check(value):
                return value
        if time.ticks_diff(time.ticks_ms(), t0) > timeout_ms:
            raise OSError("no notification as expected")
        time.sleep_ms(10)


ble = bluetooth.BLE()
if MODE == "secure1":
    ble.config(io=2, mitm=True, le_secure=True, bond=True)       # keyboard only
elif MODE in ("secure2", "reject2"):
    ble.config(io=1, mitm=True, le_secure=True, bond=True)       # display yes/no
ble.active(True)
ble.irq(irq)
ble.gap_scan(20000, 20000, 20000, True)
wait(_IRQ_SCAN_DONE)
if found["peer"] is None:
    raise OSError("no peripheral named %s found" % NAME)
ble.gap_connect(*found["peer"])
conn = wait(_IRQ_PERIPHERAL_CONNECT)[0]
print("PEER connected")
ble.gattc_discover_characteristics(conn, 1, 0xFFFF)
wait(_IRQ_GATTC_CHARACTERISTIC_DONE)
chars = found["chars"]


def char(uuid16):
    uuid = bluetooth.UUID(uuid16)
    if uuid not in chars:
        raise OSError("no characteristic 0x%04x (found %s)" % (uuid16, list(chars)))
    return chars[uuid][0]


if MODE == "battery":
    level = char(0x2A19)
    ble.gattc_discover_descriptors(conn, level, 0xFFFF)
    wait(_IRQ_GATTC_DESCRIPTOR_DONE)
    desc = found["dscs"].get(bluetooth.UUID(0x2901))
    status, text = read(conn, desc)
    print("PEER description", text)
    assert text == b"Battery Level", text
    status, value = read(conn, level)
    print("PEER level", value)
    assert status == 0 and len(value) == 1 and value[0] <= 100, (status, value)
    cccd = found["dscs"][bluetooth.UUID(0x2902)]
    write(conn, cccd, b"\x01\x00")
    for _ in range(2):
        v = wait_notification(lambda v: len(v) == 1 and v[0] <= 100)
        print("PEER notified level", v[0])
else:
    alerts, control = char(0x2A47), char(0x2A44)
    if MODE == "secure1":
        status, _ = read(conn, alerts)
        print("PEER read before pairing: status 0x%02x" % status)
        assert status != 0, "New Alerts readable without pairing"
    if MODE in ("secure1", "secure2", "reject2"):
        ble.gap_pair(conn)
        conn_, encrypted, authenticated, bonded, key_size = wait(_IRQ_ENCRYPTION_UPDATE)
        print("PEER encrypted", encrypted, "authenticated", authenticated, "bonded", bonded)
        if MODE == "reject2":
            assert not encrypted, "pairing succeeded though the peripheral did not confirm"
            ble.gap_disconnect(conn)
            wait(_IRQ_PERIPHERAL_DISCONNECT)
            print("PEER PASS")
            sys.exit(0)
        assert encrypted and authenticated and bonded, "pairing did not give an authenticated bond"
    status, value = read(conn, alerts)
    print("PEER read status", status, "value", value)
    assert status == 0 and len(value) == 16, (status, value)
    ble.gattc_discover_descriptors(conn, alerts, control - 1)
    wait(_IRQ_GATTC_DESCRIPTOR_DONE)
    write(conn, found["dscs"][bluetooth.UUID(0x2902)], b"\x01\x00")
    v = wait_notification(lambda v: len(v) == 16 and v[0] == 0 and v[1] >= 1 and v[2:10] == b"Zerynth!",
                          120_000)
    print("PEER alert notified", v)
    write(conn, control, b"\x02\x00")
    time.sleep_ms(500)
    write(conn, control, b"\x00\x00")
    time.sleep_ms(500)
ble.gap_disconnect(conn)
wait(_IRQ_PERIPHERAL_DISCONNECT)
print("PEER PASS")
