"""Top-level modules a MicroPython board script imports (bluetooth, micropython, machine, u*).

`blebridge run` puts this directory first on sys.path. It is a package only so that setuptools
ships it; nothing imports ``blebridge.shims`` itself.
"""
