"""CircuitPython's ``_bleio`` on a blebridge board (docs/circuitpython.md)."""
