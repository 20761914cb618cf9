# iBeacon reader, in Zerynth's style: scans in 3 s rounds and prints the iBeacons it decodes.
import streams
from espressif.esp32ble import esp32ble as bledrv
from wireless import ble
from wireless import ble_beacons as bb

streams.serial()


def report(data):
    try:
        uuid, major, minor, tx = bb.ibeacon_decode(data[3])
    except ValueError:
        return
    print("iBeacon found with", [hex(x) for x in uuid], major, minor, tx, data[2])


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
