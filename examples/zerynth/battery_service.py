# Battery Service peripheral, in Zerynth's style: advertises as "Zerynth" and notifies a
# Battery Level (0x180F / 0x2A19, one byte, percent) every second.
# On a board: flash it with Zerynth Studio. On a PC: blebridge run battery_service.py
import streams
from nordic.nrf52_ble import nrf52_ble as bledrv
from wireless import ble

streams.serial()
bledrv.init()
ble.gap("Zerynth")

battery = ble.Service(0x180F)
level = ble.Characteristic(0x2A19, ble.NOTIFY | ble.READ, 1, "Battery Level", ble.NUMBER)
battery.add_characteristic(level)
ble.add_service(battery)

ble.start()
ble.start_advertising()

charge = 100
while True:
    print(".")
    level.set_value(charge)
    charge = charge - 1 if charge > 0 else 100
    sleep(1000)
