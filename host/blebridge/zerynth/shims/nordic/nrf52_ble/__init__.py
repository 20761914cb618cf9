"""Zerynth's nrf52_ble driver package, served by blebridge."""
