# Alerts with passkey pairing, in Zerynth's style: as alerts.py, but the values need an
# encrypted link (security level 2) and the central pairs by typing the passkey this
# board displays (CAP_DISPLAY_ONLY, bonding, LE Secure Connections with MITM protection).
# As alerts.py: New Alerts
# (0x2A47, 16 bytes: category, count, text) notified every second while a central is
# connected and has not disabled them through the control point (0x2A44: 2 disables, 0 enables).
import streams
from nordic.nrf52_ble import nrf52_ble as bledrv
from wireless import ble

streams.serial()

state = {"connected": False, "enabled": True}


def control(status, value):
    print("Value changed to", value[0], value[1])
    if value[0] == 0:
        state["enabled"] = True
        print("Notifications enabled")
    elif value[0] == 2:
        state["enabled"] = False
        print("Notifications disabled")


def connected(addr):
    print("Connected to", ble.btos(addr))
    state["connected"] = True


def disconnected(addr):
    print("Disconnected from", ble.btos(addr))
    state["connected"] = False
    ble.start_advertising()


bledrv.init()
ble.gap("ZNotifier", security=(ble.SECURITY_MODE_1, ble.SECURITY_LEVEL_2))
ble.add_callback(ble.EVT_CONNECTED, connected)
ble.add_callback(ble.EVT_DISCONNECTED, disconnected)
alerts = ble.Service(0x1811)
new_alerts = ble.Characteristic(0x2A47, ble.NOTIFY | ble.READ, 16, "New Alerts", ble.BYTES)
alerts.add_characteristic(new_alerts)
control_point = ble.Characteristic(0x2A44, ble.WRITE, 2, "Alerts control", ble.BYTES)
control_point.set_callback(control)
alerts.add_characteristic(control_point)
ble.add_service(alerts)
ble.security(capabilities=ble.CAP_DISPLAY_ONLY, bonding=ble.AUTH_BOND,
             scheme=ble.AUTH_SC | ble.AUTH_MITM, key_size=16, passkey=225575)


def show_passkey(passkey):
    print("ENTER THIS PIN ON THE MASTER:", passkey)


ble.add_callback(ble.EVT_SHOW_PASSKEY, show_passkey)
ble.advertising(50)
ble.start()
ble.start_advertising()

while True:
    print(".")
    if state["connected"] and state["enabled"]:
        value = bytearray(new_alerts.get_value())
        value[0] = 0
        value[1] = min(value[1] + 1, 255)
        value[2:10] = "Zerynth!"
        print("Adding a new notification, total of", value[1])
        new_alerts.set_value(value)
    sleep(1000)
