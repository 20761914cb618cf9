"""Zerynth's esp32ble driver package, served by blebridge."""
