# Peer of the Zerynth Scanner example, written with MicroPython's `bluetooth`: advertises
# (connectable, name NAME) for SECONDS and prints its address as Zerynth's btos writes it
# ("PEER ADDR C0:FF:EE:00:00:01"), then "PEER PASS".
# `blebridge run --api micropython advertiser.py NAME SECONDS`
import sys
import time
import bluetooth

NAME = sys.argv[1].encode()
SECONDS = int(sys.argv[2])

ble = bluetooth.BLE()
ble.active(True)
addr_type, addr = ble.config("mac")
print("PEER ADDR " + ":".join("%02X" % b for b in addr))
adv = bytes([2, 0x01, 0x06, len(NAME) + 1, 0x09]) + NAME
ble.gap_advertise(20_000, adv)
time.sleep(SECONDS)
ble.gap_advertise(None)
print("PEER PASS")
