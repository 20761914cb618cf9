"""MicroPython's ``aioble`` (asyncio BLE) on blebridge boards (see docs/aioble.md).

    from blebridge import aioble
    aioble.use("sim:alice")                    # the board of the module-level functions
    connection = await aioble.advertise(250_000, name="alice", timeout_ms=10_000)

    bob = aioble.Radio("sim:bob")              # more boards in one event loop
    async with bob.scan(5000, active=True) as scanner: ...

Without ``use()`` the board is env ``BLEBRIDGE_PORT``, else ``sim:blebridge`` — the board
``bluetooth.BLE()`` opens; under ``blebridge run`` ``import aioble`` is this package.
Names are aioble's (micropython-lib): ``advertise``, ``scan``, ``Device``, ``Service``,
``Characteristic``, ``BufferedCharacteristic``, ``Descriptor``, ``register_services``,
``config``, ``stop``, the errors, ``ADDR_PUBLIC``/``ADDR_RANDOM``, ``log_level``.
"""
from __future__ import annotations

from typing import Any, Optional

from . import core
from .central import ScanResult, scan
from .client import ClientCharacteristic, ClientDescriptor, ClientService
from .core import (DeviceDisconnectedError, GattError, L2CAPConnectionError, L2CAPDisconnectedError,
                   log_error, log_info, log_warn)
from .device import ADDR_PUBLIC, ADDR_RANDOM, Device, DeviceConnection, DeviceTimeout
from .l2cap import L2CAPChannel
from .radio import DEFAULT_PORT, Radio, close_all, default, default_port, use
from .server import BufferedCharacteristic, Characteristic, Descriptor, Service


def config(*args: Any, **kwargs: Any) -> Any:
    """``config('mac')`` reads, ``config(mtu=247, gap_name='x')`` sets (MicroPython's
    BLE.config names); the radio is turned on first."""
    return default().config(*args, **kwargs)


def stop() -> None:
    """Turn the radio off: scans, advertising, connections and channels end."""
    default().stop()


async def advertise(interval_us: int, adv_data: Any = None, resp_data: Any = None,
                    connectable: bool = True, limited_disc: bool = False, br_edr: bool = False,
                    name: Any = None, services: Any = None, appearance: int = 0,
                    manufacturer: Any = None, timeout_ms: Optional[int] = None) -> DeviceConnection:
    """Advertise until a central connects: its DeviceConnection (asyncio.TimeoutError after
    ``timeout_ms``)."""
    from .peripheral import advertise as _advertise
    return await _advertise(default(), interval_us, adv_data, resp_data, connectable, limited_disc,
                            br_edr, name, services, appearance, manufacturer, timeout_ms)


def register_services(*services: Service) -> None:
    """Put ``services`` in the board's GATT database (replacing what was there)."""
    default().register_services(*services)


def __getattr__(name: str) -> Any:
    if name == "log_level":
        return core.log_level
    raise AttributeError(f"module 'aioble' has no attribute {name!r}")


__all__ = ["ADDR_PUBLIC", "ADDR_RANDOM", "BufferedCharacteristic", "Characteristic", "ClientCharacteristic",
           "ClientDescriptor", "ClientService", "DEFAULT_PORT", "Descriptor", "Device", "DeviceConnection",
           "DeviceDisconnectedError", "DeviceTimeout", "GattError", "L2CAPChannel", "L2CAPConnectionError",
           "L2CAPDisconnectedError", "Radio", "ScanResult", "Service", "advertise", "close_all", "config",
           "default", "default_port", "log_error", "log_info", "log_warn", "register_services", "scan",
           "stop", "use"]
