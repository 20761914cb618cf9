# Eddystone reader, in Zerynth's style: scans in 3 s rounds and prints the Eddystone frames
# it decodes (non-Eddystone packets are skipped).
import streams
from espressif.esp32ble import esp32ble as bledrv
from wireless import ble
from wireless import ble_beacons as bb

streams.serial()


def report(data):
    packet, rssi = data[3], data[2]
    try:
        kind = bb.eddy_decode_type(packet)
    except ValueError:
        return
    if kind == bb.EDDY_URL:
        url, tx = bb.eddy_decode(packet)
        print("Eddy URL found with", url, tx, rssi)
    elif kind == bb.EDDY_UID:
        namespace, instance, tx = bb.eddy_decode(packet)
        print("Eddy UID found with", [hex(x) for x in namespace], [hex(x) for x in instance], tx, rssi)
    elif kind == bb.EDDY_LTM:
        battery, temperature, count, uptime = bb.eddy_decode(packet)
        print("Eddy LTM found with", battery, temperature, count, uptime, rssi)


def stopped(data):
    print("Scan stopped")
    ble.start_scanning(3000)


bledrv.init()
ble.gap("Zerynth")
ble.add_callback(ble.EVT_SCAN_REPORT, report)
ble.add_callback(ble.EVT_SCAN_STOPPED, stopped)
ble.scanning(20, 20, duplicates=0)
ble.start()
ble.start_scanning(3000)

while True:
    print(".")
    sleep(5000)
