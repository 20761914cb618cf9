"""Transports: how the host reaches a board's byte stream.

``open_transport(spec, **kw)`` returns an open pyserial-like object (``read``, ``write``,
``in_waiting``, ``cancel_read``, ``close``, ``timeout``, ``is_open``). Accepted specs:

  /dev/ttyACM0, COM5            a local serial device, opened exclusively (a port another
                                program holds is refused with a "busy" error)
  rfc2217://HOST:PORT[?opts]    RFC 2217 (ser2net on a rig host), via pyserial's client with
                                blebridge's receive path (.rfc2217); opts as pyserial's
  socket://HOST:PORT            raw TCP, via pyserial
  hwgrep://REGEXP[&skip_busy]   the first local port whose description matches, via pyserial
  loop://                       pyserial's loopback (tests)
  sim:NAME[?air=SOCKET]         a simulated board: the sim launcher starts (or finds) the board
                                process NAME on the Bumble air at SOCKET and its pseudo-terminal
                                is opened like a USB port; closing the transport stops a board
                                process it started
    &faults=KIND[.DIR]:RATE[:MS],...&seed=N
                                puts a fault relay between the board and the host: bytes are
                                dropped, bit-flipped or delayed (KIND drop, flip, delay; DIR
                                board or host, default both; RATE per byte; MS of a delay),
                                at positions set by seed (blebridge.transport.faults)
  labgrid:PLACE[/NAME][?coordinator=HOST:PORT]
                                the board of a labgrid place (the place's NetworkSerialPort,
                                served by ser2net on its exporter): acquired for as long as the
                                transport is open, unless this host and user hold it already;
                                NAME picks one of a place's several boards (blebridge.labgrid)
  id:SERIAL                     the local USB port whose serial number is SERIAL (or a unique
                                prefix of it)
  auto                          the first known board (see blebridge.ports) that answers the
                                protocol handshake

Any other ``scheme://`` pyserial knows (spy://, alt://) works too. Keyword arguments go to
pyserial (``baudrate``...); ``timeout`` is the read poll period in seconds.

Each scheme's module is imported when a spec first needs it (as pyserial does with its URL
handlers), so importing blebridge loads neither pyserial nor the sim launcher. The modules:
serial_port (device paths, pyserial URLs), rfc2217 (rfc2217://), sim (sim:NAME; faults: its
fault relay), usb (id:, auto; probe: the handshake auto sends), labgrid (labgrid:, with
blebridge.labgrid.coordinator), reader (descriptor reads and writes, also for the RPC client).
None imports blebridge.rpc.
"""
from __future__ import annotations

from typing import Any, Optional, Protocol, runtime_checkable

from .reader import READ_POLL_S


@runtime_checkable
class Transport(Protocol):
    """What the RPC client needs from a transport (a subset of pyserial's Serial)."""

    timeout: Optional[float]

    @property
    def is_open(self) -> bool: ...

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> Optional[int]: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def open_transport(spec: str, **kw: Any) -> Any:
    """Open the transport named by ``spec`` (grammar in this module's docstring).

    Raises blebridge.errors.PortOpenError (with a ``.hint``) when it cannot be opened.
    """
    spec = spec.strip()
    if spec.startswith("sim:"):
        from .sim import open_sim
        return open_sim(spec, **kw)
    if spec.startswith("id:"):
        from .usb import open_by_serial
        return open_by_serial(spec[3:], **kw)
    if spec.startswith("labgrid:"):
        from .labgrid import open_labgrid
        return open_labgrid(spec, **kw)
    if spec == "auto":
        from .usb import open_auto
        return open_auto(**kw)
    from .serial_port import open_serial
    return open_serial(spec, **kw)


def describe(transport: Any) -> str:
    """The spec a transport was opened from, resolved (``auto`` and ``id:`` give the device)."""
    return getattr(transport, "blebridge_spec", None) or getattr(transport, "port", None) or repr(transport)


def __getattr__(name: str) -> Any:
    # DEFAULT_BAUDRATE lives with pyserial's module; loaded on first use like the schemes.
    if name == "DEFAULT_BAUDRATE":
        from .serial_port import DEFAULT_BAUDRATE
        return DEFAULT_BAUDRATE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["open_transport", "Transport", "describe", "DEFAULT_BAUDRATE", "READ_POLL_S"]
