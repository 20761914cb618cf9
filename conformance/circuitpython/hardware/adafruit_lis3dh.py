"""Stand-in for ``adafruit_lis3dh`` (conformance only): an accelerometer at rest, tilted.

``acceleration`` is a fixed (x, y, z) in m/s², so ble_demo_central.py sends the colour
(127, 0, 63) (its ``scale``: |a| / 19.6 * 255, as an int)."""
RANGE_2_G = 0
RANGE_4_G = 1
RANGE_8_G = 2
RANGE_16_G = 3

#: m/s² per axis.
ACCELERATION = (9.8, 0.0, -4.9)


class LIS3DH_I2C:  # noqa: N801 (the driver's name)
    def __init__(self, i2c, *, address=0x18, int1=None, int2=None):
        self.range = RANGE_2_G

    @property
    def acceleration(self):
        return ACCELERATION
