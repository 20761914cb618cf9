"""Top-level modules a CircuitPython board script imports besides ``_bleio`` and
``microcontroller`` (binding.py): ``micropython``.

`blebridge run --api circuitpython` puts this directory on sys.path after the user's
directories (circuitpython/run.py). It is a package only so that setuptools ships it; nothing
imports ``blebridge.circuitpython.shims`` itself.
"""
