"""Simulated boards: the Bumble air (air.py) and the launcher of sim:NAME boards (launcher.py)."""
