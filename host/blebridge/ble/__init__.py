"""API-neutral BLE layer: what every API layer (MicroPython ``bluetooth``, aioble, ``_bleio``,
Zerynth) shares about a board. Each API layer keeps only its own argument checks, object shapes,
exceptions and callback style, over these modules (docs: /work/shared/design/HOST-LAYOUT.md).
"""
