"""Stand-in for ``neopixel`` (conformance only): pixels that keep their colours."""


class NeoPixel(list):
    def __init__(self, pin, n, *, brightness=1.0, auto_write=True, pixel_order=None):
        super().__init__([(0, 0, 0)] * n)
        self.pin = pin
        self.brightness = brightness

    def fill(self, color):
        self[:] = [color] * len(self)

    def show(self):
        return None
