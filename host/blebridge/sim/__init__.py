"""Simulated boards: the Bumble air (air.py, a module per BLE layer beside it) and the launcher
of sim:NAME boards (launcher.py)."""
