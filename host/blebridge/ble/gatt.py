"""The local GATT database of one board, API-neutral.

The board's ``gatts_register_services`` replaces its whole database at once (protocol/schema.toml),
while ``_bleio`` and Zerynth add services one at a time and MicroPython registers all of them in
one call. This module keeps the services the host has registered, builds the wire form for the
board, and maps the board's answer onto the attributes by name (each object gets its handles), so
API layers never unpack the result by position. Adding a service registers everything again: the
values the attributes hold on the board are read first and sent as initial values, so they
survive (``add_service``).

Flags are the protocol's (``constants.flag``): GATT properties in the low byte, permissions
(encrypted, authenticated, authorized, LE Secure Connections) above it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Union

from .. import protocol as P
from ..errors import ProtocolError

#: Characteristic/descriptor flag bits by name (protocol constants.flag).
FLAG = P.CONSTANTS["flag"]
FLAG_READ = FLAG["READ"]
FLAG_WRITE_NO_RESPONSE = FLAG["WRITE_NO_RESPONSE"]
FLAG_WRITE = FLAG["WRITE"]
FLAG_NOTIFY = FLAG["NOTIFY"]
FLAG_INDICATE = FLAG["INDICATE"]
#: Bits of a flags value that are GATT characteristic properties (the declaration's byte).
PROPERTY_MASK = 0xFF

#: Sends a services wire form to the board and returns its answer (calls.gatts_register_services
#: through the API layer's own error mapping).
Send = Callable[[list], Any]
#: Reads the current value of a local attribute from the board by handle (calls.gatts_read).
ReadValue = Callable[[int], bytes]


def _flag(flags: int, name: str) -> bool:
    return bool(flags & FLAG[name])


@dataclass(eq=False)
class Descriptor:
    """A local descriptor. ``max_len`` is its buffer size in bytes; ``append`` says peer writes
    accumulate (MicroPython's gatts_set_buffer). ``handle`` is 0 until registered."""

    uuid: bytes
    flags: int
    max_len: int
    value: bytes = b""
    handle: int = 0
    append: bool = False

    def has(self, name: str) -> bool:
        """Whether flag ``name`` (constants.flag, e.g. ``READ_ENCRYPTED``) is set."""
        return _flag(self.flags, name)

    def _wire(self) -> list:
        return [bytes(self.uuid), int(self.flags), int(self.max_len), bytes(self.value)]


@dataclass(eq=False)
class Characteristic:
    """A local characteristic. ``handle`` is its value handle; ``decl_handle`` its declaration,
    ``cccd_handle`` its client configuration descriptor (0: none, no notify/indicate)."""

    uuid: bytes
    flags: int
    max_len: int
    value: bytes = b""
    descriptors: list[Descriptor] = field(default_factory=list)
    handle: int = 0
    decl_handle: int = 0
    cccd_handle: int = 0
    append: bool = False

    @property
    def properties(self) -> int:
        """The GATT properties byte of the declaration."""
        return self.flags & PROPERTY_MASK

    def has(self, name: str) -> bool:
        """Whether flag ``name`` (constants.flag, e.g. ``WRITE_AUTHENTICATED``) is set."""
        return _flag(self.flags, name)

    def _wire(self) -> list:
        return [bytes(self.uuid), int(self.flags), int(self.max_len), bytes(self.value),
                [d._wire() for d in self.descriptors]]


@dataclass(eq=False)
class Service:
    """A local service, primary unless ``secondary``; ``handle`` is its declaration handle
    (0 until registered)."""

    uuid: bytes
    characteristics: list[Characteristic] = field(default_factory=list)
    handle: int = 0
    secondary: bool = False

    def _wire(self) -> list:
        wire = [bytes(self.uuid), [c._wire() for c in self.characteristics]]
        if self.secondary:   # the optional third element (schema gatts_register_services)
            wire.append(True)
        return wire


#: A local attribute with a value: what a handle names.
Attribute = Union[Characteristic, Descriptor]


def wire_form(services: Iterable[Service]) -> list:
    """The ``services`` argument of the board's gatts_register_services."""
    return [s._wire() for s in services]


class GattDatabase:
    """The services registered on one board, and which attribute each handle names."""

    def __init__(self) -> None:
        self.services: list[Service] = []
        self._by_handle: dict[int, Attribute] = {}

    def register(self, services: list[Service], send: Send) -> list[Service]:
        """Replace the database with ``services`` (all at once, as MicroPython does); their
        handles are set from the board's answer. If ``send`` raises, nothing changes."""
        result = send(wire_form(services))
        by_handle = _assign_handles(services, result)
        self.services = list(services)
        self._by_handle = by_handle
        return self.services

    def add_service(self, service: Service, send: Send, read_value: ReadValue) -> Service:
        """Add one service (as ``_bleio`` and Zerynth do). The board replaces its whole database,
        so every attribute registered before is sent again with the value it holds on the board
        now (``read_value``), and keeps it."""
        self.replace([*self.services, service], send, read_value)
        return service

    def replace(self, services: list[Service], send: Send, read_value: ReadValue) -> list[Service]:
        """Register ``services``: those registered before (possibly with characteristics or
        descriptors added since) and new ones, all at once. Every attribute registered before
        is sent with the value it holds on the board now (``read_value``), and keeps it; a
        layer that adds services one at a time registers them in one go before it needs
        handles."""
        for attr in self._by_handle.values():
            attr.value = bytes(read_value(attr.handle))
        return self.register(list(services), send)

    def attribute(self, handle: int) -> Optional[Attribute]:
        """The characteristic (by value handle) or descriptor with this handle, or None."""
        return self._by_handle.get(handle)

    def has_attributes(self) -> bool:
        """Whether any attribute is registered (a handle not found then is surely unknown)."""
        return bool(self._by_handle)

    def clear(self) -> None:
        """Forget every service (the board's database is gone: radio off, reset)."""
        self.services = []
        self._by_handle = {}


def _assign_handles(services: list[Service], result: Any) -> dict[int, Attribute]:
    """Set each object's handles from the board's answer (schema: per service
    [service_handle, [[decl_handle, value_handle, cccd_handle or 0, [dsc_handle, ...]], ...]]);
    ProtocolError if the answer does not have the shape of what was sent."""
    def shape_error(what: str) -> ProtocolError:
        return ProtocolError(f"gatts_register_services: the board's answer has {what}")

    if not isinstance(result, (list, tuple)) or len(result) != len(services):
        raise shape_error(f"not one entry per service ({len(services)})")
    by_handle: dict[int, Attribute] = {}
    assigned: list[tuple[Any, dict]] = []
    for service, entry in zip(services, result):
        try:
            service_handle, chars = entry
        except (TypeError, ValueError):
            raise shape_error("a service entry that is not [handle, characteristics]") from None
        if len(chars) != len(service.characteristics):
            raise shape_error(f"{len(chars)} characteristics for {len(service.characteristics)}")
        handles: dict = {"service": int(service_handle), "chars": []}
        for char, char_entry in zip(service.characteristics, chars):
            try:
                decl, value_handle, cccd, dsc_handles = char_entry
            except (TypeError, ValueError):
                raise shape_error("a characteristic entry that is not [decl, value, cccd, "
                                  "descriptors]") from None
            # The board may add descriptors of its own after ours (none today); ours come first.
            if len(dsc_handles) < len(char.descriptors):
                raise shape_error(f"{len(dsc_handles)} descriptor handles for {len(char.descriptors)}")
            handles["chars"].append((int(decl), int(value_handle), int(cccd or 0),
                                     [int(h) for h in dsc_handles[:len(char.descriptors)]]))
        assigned.append((service, handles))
    # Only now that the whole answer is understood are the objects changed.
    for service, handles in assigned:
        service.handle = handles["service"]
        for char, (decl, value_handle, cccd, dscs) in zip(service.characteristics, handles["chars"]):
            char.decl_handle, char.handle, char.cccd_handle = decl, value_handle, cccd
            by_handle[value_handle] = char
            for dsc, h in zip(char.descriptors, dscs):
                dsc.handle = h
                by_handle[h] = dsc
    return by_handle
