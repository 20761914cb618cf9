# Eddystone beacon, in Zerynth's style: cycles UID (3 s), URL (3 s) and TLM (0.3 s) frames,
# non-connectable; each end of advertising (EVT_ADV_STOPPED) starts the next frame.
import streams
import timers
from espressif.esp32ble import esp32ble as bledrv
from wireless import ble
from wireless import ble_beacons as bb

streams.serial()

uptime = timers.timer()
uptime.start()
state = {"frame": 0, "count": 0}
FRAMES = [
    (lambda: bb.eddy_encode_uid("Zerynth", "Python", -69), 3000),
    (lambda: bb.eddy_encode_url("https://www.zerynth.com", -69), 3000),
    (lambda: bb.eddy_encode_tlm(40, 23.2, state["count"], uptime.get() / 1000), 300),
]


def advertise(index):
    make, timeout = FRAMES[index]
    if index == 2:
        state["count"] += 1
    payload = make()
    ble.advertising(100, timeout=timeout, payload=payload, mode=ble.ADV_UNCN_UND)
    ble.start_advertising()
    print("Advertising restarted with", ble.btos(payload))


def stopped(data):
    print("Advertising stopped")
    state["frame"] = (state["frame"] + 1) % len(FRAMES)
    advertise(state["frame"])


bledrv.init()
ble.gap("Zerynth")
ble.add_callback(ble.EVT_ADV_STOPPED, stopped)
ble.start()
advertise(0)

while True:
    print(".")
    sleep(5000)
