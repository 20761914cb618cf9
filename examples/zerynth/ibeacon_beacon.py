# iBeacon, in Zerynth's style: advertises one iBeacon payload, non-connectable, every 20 ms.
import streams
from espressif.esp32ble import esp32ble as bledrv
from wireless import ble
from wireless import ble_beacons as bb

streams.serial()
bledrv.init()
ble.gap("Zerynth")
ble.advertising(20, payload=bb.ibeacon_encode("fb0b57a2-8228-44cd-913a-94a122ba1206", 10, 3, -69),
                mode=ble.ADV_UNCN_UND)
ble.start()
ble.start_advertising()

while True:
    print(".")
    sleep(5000)
