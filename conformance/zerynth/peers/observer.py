# Peer of the Zerynth beacons, written with MicroPython's `bluetooth`: scans for SECONDS and
# decodes beacon payloads itself (from the specifications, not with blebridge's ble_beacons).
# Prints each kind of frame once ("PEER IBEACON uuid major minor power", "PEER EDDY-UID ...",
# "PEER EDDY-URL ...", "PEER EDDY-TLM ...") and "PEER PASS" when all WANT kinds were seen.
# `blebridge run --api micropython observer.py SECONDS WANT[,WANT...]`
import sys
import time
import bluetooth

SECONDS = int(sys.argv[1])
WANT = sys.argv[2].split(",")
SCHEMES = ["http://www.", "https://www.", "http://", "https://"]
ENDINGS = [".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/",
           ".com", ".org", ".edu", ".net", ".info", ".biz", ".gov"]
seen = {}


def signed(b):
    return b - 256 if b > 127 else b


def decode(adv):
    adv = bytes(adv)
    if len(adv) == 30 and adv[3:9] == bytes([26, 0xFF, 0x4C, 0x00, 0x02, 0x15]):
        return "IBEACON", "%s %d %d %d" % (adv[9:25].hex(), adv[25] << 8 | adv[26],
                                           adv[27] << 8 | adv[28], signed(adv[29]))
    if len(adv) > 11 and adv[3:7] == b"\x03\x03\xaa\xfe" and adv[8:11] == b"\x16\xaa\xfe":
        frame = adv[11:]
        if frame[0] == 0x00:
            return "EDDY-UID", "%s %s %d" % (frame[2:12].hex(), frame[12:18].hex(), signed(frame[1]))
        if frame[0] == 0x10:
            url = SCHEMES[frame[2]]
            for b in frame[3:]:
                url += ENDINGS[b] if b < len(ENDINGS) else chr(b)
            return "EDDY-URL", "%s %d" % (url, signed(frame[1]))
        if frame[0] == 0x20:
            temp = frame[4] << 8 | frame[5]
            temp = (temp - 65536 if temp & 0x8000 else temp) / 256
            return "EDDY-TLM", "%d %.2f %d %.1f" % (frame[2] << 8 | frame[3], temp,
                                                     int.from_bytes(frame[6:10], "big"),
                                                     int.from_bytes(frame[10:14], "big") / 10)
    return None, None


def irq(event, data):
    if event == 5:
        kind, text = decode(data[4])
        if kind is not None and kind not in seen:
            seen[kind] = text
            print("PEER", kind, text)


ble = bluetooth.BLE()
ble.active(True)
ble.irq(irq)
ble.gap_scan(SECONDS * 1000, 20000, 20000, False)
t0 = time.ticks_ms()
while not all(w in seen for w in WANT) and time.ticks_diff(time.ticks_ms(), t0) < SECONDS * 1000:
    time.sleep_ms(50)
ble.gap_scan(None)
missing = [w for w in WANT if w not in seen]
if missing:
    raise OSError("not seen: %s" % missing)
print("PEER PASS")
