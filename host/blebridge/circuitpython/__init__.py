"""CircuitPython on blebridge boards: the ``_bleio`` module (see docs/circuitpython.md).

    import _bleio                      # under `blebridge run`: this package's _bleio
    _bleio.adapter.start_advertising(data)

    from blebridge import circuitpython
    alice = circuitpython.adapter_for("sim:alice")     # several boards in one process
    with circuitpython.using(alice):                   # local services made here go on alice
        uart = UARTService()
    BLERadio(alice).start_advertising(ProvideServicesAdvertisement(uart))

``_bleio.adapter`` is the default board's adapter: the port given to ``blebridge run --port``
(env ``BLEBRIDGE_PORT``), else ``sim:blebridge``, opened on first use.
"""
from __future__ import annotations

from typing import Any

from . import binding as _binding

# From here on `import _bleio` (adafruit_ble's) is this package's, not Blinka's (binding.py).
_binding.bind()


def adapter_for(board: Any) -> Any:
    """The ``_bleio.Adapter`` of ``board``: a port (``"sim:alice"``, ``/dev/ttyACM0``), opened
    once and reset, or an open :class:`blebridge.Board`. One adapter per board."""
    from ._bleio.adapters import adapter_for as _adapter_for
    return _adapter_for(board)


def using(adapter: Any) -> Any:
    """A context manager: local ``_bleio.Service`` objects made inside it belong to ``adapter``
    (outside any, to ``_bleio.adapter``)."""
    from ._bleio.adapters import using as _using
    return _using(adapter)


__all__ = ["adapter_for", "using"]
