"""Stand-in for ``digitalio`` (conformance only): a pin that is never driven."""


class DigitalInOut:
    def __init__(self, pin):
        self.pin = pin
        self.value = False
