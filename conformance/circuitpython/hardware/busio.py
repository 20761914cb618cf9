"""Stand-in for ``busio`` (conformance only): an I2C bus nothing is read from."""


class I2C:
    def __init__(self, scl, sda, *, frequency=100000):
        self.scl, self.sda = scl, sda
