"""The RPC wire format above framing: events, the handshake's BoardInfo, requests, versions.

API-neutral and free of I/O: the Board (blebridge.rpc) and the ``auto`` probe
(blebridge.transport.usb) both build requests and read handshakes with it. Message layout:
protocol/README.md; tables: blebridge.protocol (generated from protocol/schema.toml).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import cbor2

from . import protocol as P
from .errors import BoardError, ProtocolError, VersionMismatch
from .events import typed_event
from .framing import encode_frame

# The version warning is the RPC client's: it keeps that logger's name.
log = logging.getLogger("blebridge.rpc")

_EVENT_NAMES = {code: ev.name for code, ev in P.EVENTS.items()}


class Event(NamedTuple):
    """One board->host event. ``fields`` are in schema order; bytes fields are ``bytes``."""

    code: int
    name: str
    fields: tuple

    @property
    def typed(self) -> Any:
        """The fields as the event's NamedTuple (blebridge.events, e.g. GattsWrite), built on each
        access; ProtocolError if they do not match the schema."""
        return typed_event(self.code, self.fields)


_tuple_new = tuple.__new__     # builds Event without NamedTuple.__new__'s Python frame (hot path)


def make_event(code: Any, fields: tuple) -> Event:
    """The Event for a decoded event record (an unknown code is named ``EVENT_<code>``).
    TypeError if the code is not an integer (event codes are uints; a list code raises it from
    the table lookup, being unhashable)."""
    name = _EVENT_NAMES.get(code)
    if name is None:
        if type(code) is not int:
            raise TypeError(f"event code {code!r} is not an integer")
        name = f"EVENT_{code}"
    return _tuple_new(Event, (code, name, fields))


@dataclass(frozen=True)
class BoardInfo:
    """What the handshake says about the board and its firmware."""

    proto: tuple[int, int]
    fw_version: str
    fw_build: str
    board: str
    caps: dict = field(default_factory=dict)
    addr_type: int = 0
    addr: bytes = b""
    boot_id: int = 0
    port: str = ""

    @classmethod
    def from_handshake(cls, result: Any) -> "BoardInfo":
        if not isinstance(result, dict):
            raise ProtocolError(f"handshake: expected a map, got {type(result).__name__}")
        try:
            proto = result["proto"]
            return cls(
                proto=(int(proto[0]), int(proto[1])),
                fw_version=str(result.get("fw_version", "")),
                fw_build=str(result.get("fw_build", "")),
                board=str(result.get("board", "")),
                caps=dict(result.get("caps") or {}),
                addr_type=int(result.get("addr_type", 0)),
                addr=bytes(result.get("addr") or b""),
                boot_id=int(result.get("boot_id", 0)),
                port=str(result.get("port", "")),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ProtocolError(f"handshake: malformed result ({exc})") from exc

    @property
    def addr_str(self) -> str:
        """Radio address as usually written (MSB first, colon separated)."""
        return ":".join(f"{b:02X}" for b in reversed(self.addr))


def _fix_command(spec: str, port_name: str) -> str:
    if spec.startswith("sim:") or port_name == "sim":
        return "make firmware"
    return f"blebridge flash --port {spec}" if spec else "blebridge flash"


def check_version(info: BoardInfo, spec: str) -> None:
    """Raise VersionMismatch if the firmware's protocol major differs from ours."""
    if info.proto[0] != P.PROTO_MAJOR:
        raise VersionMismatch((P.PROTO_MAJOR, P.PROTO_MINOR), info.proto,
                              _fix_command(spec, info.port), spec)
    if info.proto[1] < P.PROTO_MINOR:
        log.warning("%s: firmware speaks protocol %d.%d, host %d.%d: newer calls may fail "
                    "with UNKNOWN_METHOD; update with `%s`", spec, *info.proto, P.PROTO_MAJOR,
                    P.PROTO_MINOR, _fix_command(spec, info.port))


def encode_request(req_id: int, method: str, args: tuple) -> bytes:
    """Wire frame of one request, after checking the arguments against the schema."""
    m = P.METHODS.get(method)
    if m is None:
        raise ValueError(f"unknown method {method!r}")
    n = len(args)
    if n < m.argc_min or n > len(m.args):
        raise TypeError(f"{method}() takes {m.argc_min}..{len(m.args)} arguments ({n} given)")
    for f, a in zip(m.args, args):
        if f.max and f.type in ("bytes", "str") and a is not None:
            size = len(a.encode() if isinstance(a, str) else a)
            if size > f.max:
                raise BoardError(P.STATUS["VALUE_TOO_LARGE"], method,
                                 f"{f.name} is {size} bytes, the limit is {f.max}")
    payload = cbor2.dumps([P.MSG_REQ, req_id, m.id, *args])
    if len(payload) > P.LIMITS["MAX_FRAME"]:
        raise BoardError(P.STATUS["VALUE_TOO_LARGE"], method,
                         f"request is {len(payload)} bytes, MAX_FRAME is {P.LIMITS['MAX_FRAME']}")
    return encode_frame(payload)
