# Peer of the Zerynth beacon readers, written with MicroPython's `bluetooth`: advertises
# (non-connectable) beacon payloads built here from the specifications, not with blebridge's
# ble_beacons, each for SECONDS, then prints "PEER PASS".
# `blebridge run --api micropython beacon.py ibeacon|eddystone SECONDS`
import sys
import time
import bluetooth

KIND = sys.argv[1]
SECONDS = int(sys.argv[2])
FLAGS = bytes([2, 0x01, 0x06])


def eddystone(frame):
    service_data = b"\x16\xaa\xfe" + frame
    return FLAGS + b"\x03\x03\xaa\xfe" + bytes([len(service_data)]) + service_data


PAYLOADS = {
    # iBeacon: Apple 0x004C, type 2, 21 bytes: UUID, major 7, minor 42, power -59 dBm.
    "ibeacon": [FLAGS + bytes([26, 0xFF, 0x4C, 0x00, 0x02, 0x15])
                + bytes.fromhex("e2c56db5dffb48d2b060d0f5a71096e0") + bytes([0, 7, 0, 42, 0xC5])],
    # Eddystone URL "https://example.org/" (1 = https://, 0x01 = ".org/"), power -20 dBm;
    # UID namespace 00..09, instance a0..a5, power -30; TLM 3000 mV, 21.5 C, 17 PDUs, 12.3 s.
    "eddystone": [eddystone(bytes([0x10, 0xEC, 0x03]) + b"example" + bytes([0x01])),
                  eddystone(bytes([0x00, 0xE2]) + bytes(range(10)) + bytes(range(0xA0, 0xA6)) + b"\0\0"),
                  eddystone(bytes([0x20, 0x00, 0x0B, 0xB8, 21, 128, 0, 0, 0, 17, 0, 0, 0, 123]))],
}

ble = bluetooth.BLE()
ble.active(True)
for payload in PAYLOADS[KIND]:
    ble.gap_advertise(20_000, payload, connectable=False)
    time.sleep(SECONDS)
ble.gap_advertise(None)
print("PEER PASS")
