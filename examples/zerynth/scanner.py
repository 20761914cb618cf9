# Scanner, in Zerynth's style: scans in 10 s rounds and prints every advertising report.
import streams
from espressif.esp32ble import esp32ble as bledrv
from wireless import ble

streams.serial()

ROUND_MS = 10000


def report(data):
    kind, addr_type, rssi, packet, addr = data
    print("Detected packet from", ble.btos(addr), "containing", ble.btos(packet))
    print("         packet is of type", kind, "while address is of type", addr_type, "rssi", rssi)


def started(data):
    print("Scan started")


def stopped(data):
    print("Scan stopped")
    ble.start_scanning(ROUND_MS)


bledrv.init()
ble.gap("Zerynth")
ble.add_callback(ble.EVT_SCAN_REPORT, report)
ble.add_callback(ble.EVT_SCAN_STARTED, started)
ble.add_callback(ble.EVT_SCAN_STOPPED, stopped)
ble.scanning(20, 20, duplicates=0)
ble.start()
ble.start_scanning(ROUND_MS)

while True:
    print(".")
    sleep(5000)
