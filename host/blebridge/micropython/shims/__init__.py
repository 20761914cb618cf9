"""Top-level modules a MicroPython board script imports (bluetooth, micropython, machine, u*).

`blebridge run --api micropython` puts this directory first on sys.path (micropython/run.py).
It is a package only so that setuptools ships it; nothing imports
``blebridge.micropython.shims`` itself.
"""
