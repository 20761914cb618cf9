"""The API-neutral BLE layer: what every API layer (MicroPython ``bluetooth``, aioble, ``_bleio``,
Zerynth) shares, once, below them.

Modules model BLE things (UUIDs, addresses, advertising data, the local GATT database, bonds,
board statuses) and the event session of a board (session.py), with the GATT client procedures
(gattc.py) and L2CAP channels (l2cap.py) on it, which talk to the board; an API
layer keeps only its own argument checks, object shapes, exceptions and callback style. Nothing here imports from an API layer (docs: /work/shared/design/HOST-LAYOUT.md).

This file imports nothing on purpose: each module is imported by name
(``from blebridge.ble import uuid``), so modules can be added without touching it.
"""
