"""``labgrid:PLACE[/NAME][?coordinator=HOST:PORT]``: a board of a labgrid place (blebridge.labgrid).

Opening it connects to the coordinator (``coordinator=``, else env LG_COORDINATOR, else
127.0.0.1:20408), and uses the place when this host and user hold it already (``labgrid-client
-p PLACE acquire``, or the hil plugin), or acquires it and releases it again when the transport
closes. The board is the place's serial port (a NetworkSerialPort, served by ser2net on the
exporter), opened as ``rfc2217://`` (with blebridge's RFC 2217 client, .rfc2217, as any
rfc2217:// spec) or ``socket://``; NAME picks one when the place holds several boards. A place held by someone else is refused, naming the holder.
"""
from __future__ import annotations

import re
from typing import Any, Optional
from urllib.parse import parse_qs

from ..errors import PortOpenError
from .serial_port import open_serial

SCHEME = "labgrid:"
#: Place and resource names as labgrid allows them (TAG_VAL of labgrid.remote.client).
_NAME = r"[A-Za-z0-9_.\-]+"
_SPEC = re.compile(rf"^labgrid:(?P<place>{_NAME})(?:/(?P<name>{_NAME}))?(?:\?(?P<query>.*))?$")
_GRAMMAR = "labgrid:PLACE[/NAME][?coordinator=HOST:PORT]"


def parse_labgrid_spec(spec: str) -> tuple[str, Optional[str], Optional[str]]:
    """(place, resource name or None, coordinator address or None); ValueError when malformed."""
    m = _SPEC.match(spec.strip())
    if not m:
        raise ValueError(f"malformed labgrid port {spec!r}: expected {_GRAMMAR}")
    coordinator = None
    if m.group("query"):
        query = parse_qs(m.group("query"), keep_blank_values=True, strict_parsing=False)
        unknown = set(query) - {"coordinator"}
        if unknown:
            raise ValueError(f"labgrid port {spec!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                             f"expected {_GRAMMAR}")
        if "coordinator" in query:
            coordinator = query["coordinator"][-1]
            if not coordinator:
                raise ValueError(f"labgrid port {spec!r}: empty coordinator address")
    return m.group("place"), m.group("name"), coordinator


class LabgridTransport:
    """A pyserial port on a place's board, plus what is needed to release the place on close."""

    def __init__(self, ser: Any, spec: str, place: str, address: str, owned: bool, url: str) -> None:
        self._ser = ser
        self.blebridge_spec = spec
        self.place = place
        self.coordinator = address
        self.owned = owned          # acquired by this transport: released by close()
        self.url = url              # what was opened: rfc2217://host:port... or socket://...

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ser, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("_ser", "blebridge_spec", "place", "coordinator", "owned", "url"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._ser, name, value)

    @property
    def serial(self) -> Any:
        return self._ser

    def close(self) -> None:
        try:
            self._ser.close()
        finally:
            if self.owned:
                self.owned = False
                _release(self.place, self.coordinator)


def _release(place: str, address: str) -> None:
    from ..labgrid.coordinator import Coordinator, CoordinatorError
    try:
        with Coordinator(address) as coord:
            coord.release(place)
    except CoordinatorError as exc:
        import warnings
        warnings.warn(f"could not release labgrid place {place}: {exc}; release it with "
                      f"`labgrid-client -x {address} -p {place} release`", RuntimeWarning, stacklevel=3)


def open_labgrid(spec: str, **kw: Any) -> LabgridTransport:
    try:
        place, name, address = parse_labgrid_spec(spec)
    except ValueError as exc:
        raise PortOpenError(spec, str(exc), f"ports of labgrid places are {_GRAMMAR}") from exc
    try:
        from ..labgrid.coordinator import (Coordinator, CoordinatorError, CoordinatorUnreachable,
                                           PlaceBusyError, coordinator_address, reachable_url)
    except ImportError as exc:    # pragma: no cover - the module imports labgrid lazily
        raise PortOpenError(spec, str(exc), "install labgrid: pip install 'blebridge[labgrid]'") from exc
    address = coordinator_address(address)
    hint = (f"`labgrid-client -x {address} places` lists the places, "
            f"`labgrid-client -x {address} -p {place} show` shows this one")
    owned = False
    try:
        with Coordinator(address) as coord:
            if not coord.may_use(place):
                coord.acquire(place)
                owned = True
            try:
                ports = coord.serial_ports(place)
                entry = _pick(spec, place, name, ports)
                url = reachable_url(entry)
            except BaseException:
                if owned:
                    coord.release(place)
                raise
    except CoordinatorUnreachable as exc:
        raise PortOpenError(spec, str(exc), "check that labgrid-coordinator runs there; the address "
                            "comes from ?coordinator=HOST:PORT, else LG_COORDINATOR") from exc
    except PlaceBusyError as exc:
        raise PortOpenError(spec, str(exc), f"wait until {exc.acquired} releases it "
                            f"(`labgrid-client -x {address} -p {place} who`)") from exc
    except CoordinatorError as exc:
        text = str(exc)
        if "not installed" in text:
            raise PortOpenError(spec, text, "pip install 'blebridge[labgrid]'") from exc
        raise PortOpenError(spec, text, hint) from exc
    try:
        ser = open_serial(url, **kw)
    except PortOpenError as exc:
        if owned:
            _release(place, address)
        raise PortOpenError(spec, f"{exc.reason} ({url})", exc.hint, exc.errno) from exc
    return LabgridTransport(ser, spec, place, address, owned, url)


def _pick(spec: str, place: str, name: Optional[str], ports: list[Any]) -> Any:
    from ..labgrid.coordinator import CoordinatorError
    names = ", ".join(p.name for p in ports)
    if name is None:
        if len(ports) > 1:
            raise CoordinatorError(f"place {place} has {len(ports)} serial ports ({names}): "
                                   f"name one, labgrid:{place}/NAME")
        return ports[0]
    for p in ports:
        if p.name == name:
            return p
    raise CoordinatorError(f"place {place} has no serial port named {name} (it has: {names})")
