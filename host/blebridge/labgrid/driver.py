"""``BlebridgeDriver``: a labgrid driver for a board running blebridge's firmware.

Importing this module registers the driver with labgrid's ``target_factory``; an environment
file loads it with ``imports: [blebridge.labgrid.driver]`` and names it under a target's
drivers::

    targets:
      feather-1:
        resources:
          RemotePlace: {name: bb-feather-1}
        drivers:
          BlebridgeDriver: {kind: feather_nrf52840}
          # optional: a power driver for the place's power resource, e.g. NetworkPowerDriver: {}

Bindings: ``port``, the board's serial port (``NetworkSerialPort`` from an exporter, or a local
``RawSerialPort``/``USBSerialPort``); ``power``, any PowerProtocol driver (optional).
Attributes: ``kind`` (PlatformIO board kind for flashing, default: from USB VID:PID), ``flash``
(may :meth:`prepare` flash it, default true), ``project_dir`` (the blebridge checkout to build
from, default as ``blebridge flash``), ``handshake_timeout`` (s).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.resource import NetworkSerialPort

from .. import protocol as P
from ..errors import BlebridgeError
from ..fwcheck import checkout_fw_version, is_stale
from .coordinator import SerialPortEntry, port_url, reachable_url

#: Seconds the handshake may take before a board counts as not answering.
HANDSHAKE_TIMEOUT_S = 5.0
#: Seconds a power-cycled board gets to boot and answer (tried every BOOT_POLL_S).
BOOT_TIMEOUT_S = 15.0
BOOT_POLL_S = 0.5


class BlebridgeDriverError(RuntimeError):
    """A board cannot be brought to this checkout's firmware; the message says what to do."""


@target_factory.reg_driver
@attr.s(eq=False)
class BlebridgeDriver(Driver):
    """A blebridge board on a labgrid target: open it, check its firmware, flash, power-cycle."""

    bindings = {
        "port": {"SerialPort", "NetworkSerialPort"},
        "power": {"PowerProtocol", None},
    }

    kind = attr.ib(default=None, validator=attr.validators.optional(attr.validators.instance_of(str)))
    flash = attr.ib(default=True, validator=attr.validators.instance_of(bool))
    project_dir = attr.ib(default=None, validator=attr.validators.optional(attr.validators.instance_of(str)))
    handshake_timeout = attr.ib(default=HANDSHAKE_TIMEOUT_S, converter=float)

    #: blebridge.flash.flash, replaceable (tests, or a lab's own flasher): (url, kind, project_dir) -> None
    flasher: Optional[Callable[[str, Optional[str], Optional[str]], Any]] = None

    # -- where the board is ------------------------------------------------------------------

    @Driver.check_active
    def url(self) -> str:
        """The port spec blebridge opens: the local device, or rfc2217://… / socket://… of the
        exporter's ser2net (through an SSH forward when the exporter requires one)."""
        if isinstance(self.port, NetworkSerialPort):
            entry = SerialPortEntry(name=self.port.name or "", host=self.port.host,
                                    port=self.port.port, protocol=self.port.protocol,
                                    speed=self.port.speed,
                                    extra=dict(getattr(self.port, "extra", None) or {}))
            return reachable_url(entry)
        return self.port.port

    @Driver.check_active
    def open(self, **kw: Any) -> Any:
        """An opened ``blebridge.Board`` (the caller closes it); raises as open_board does."""
        from ..rpc import open_board
        kw.setdefault("timeout", self.handshake_timeout)
        return open_board(self.url(), **kw)

    @Driver.check_active
    def handshake(self) -> Optional[Any]:
        """The board's handshake (``BoardInfo``), or None when no blebridge firmware answers."""
        try:
            with self.open() as board:
                return board.info
        except BlebridgeError as exc:
            self.logger.info("no blebridge firmware answers on %s: %s", self.url(), exc)
            return None

    # -- bringing it to this checkout's firmware --------------------------------------------

    def _project_dir(self) -> Path:
        from ..flash import find_project_dir
        return find_project_dir(self.project_dir)

    @Driver.check_active
    def wanted_version(self) -> str:
        """BB_FW_VERSION of the firmware this driver would flash."""
        return checkout_fw_version(self._project_dir())

    @Driver.check_active
    def is_stale(self, info: Optional[Any]) -> bool:
        """True when the board (its handshake ``info``, None: nothing answered) needs flashing."""
        fw = getattr(info, "fw_version", None)
        proto = getattr(info, "proto", None)
        return is_stale(fw, proto, self.wanted_version(), (P.PROTO_MAJOR, P.PROTO_MINOR))

    @Driver.check_active
    def power_cycle(self) -> None:
        """Cycle the board's power through the target's power driver."""
        if self.power is None:
            raise BlebridgeDriverError(f"{self.target.name}: no power driver on this target")
        self.logger.info("power-cycling %s", self.target.name)
        self.power.cycle()

    def _await_boot(self) -> Optional[Any]:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            info = self.handshake()
            if info is not None or time.monotonic() >= deadline:
                return info
            time.sleep(BOOT_POLL_S)

    @Driver.check_active
    def do_flash(self) -> None:
        """Build and upload this checkout's firmware with PlatformIO (``blebridge flash``)."""
        if self.flasher is not None:
            self.flasher(self.url(), self.kind, self.project_dir)
            return
        from ..cli import CliError
        from ..flash import flash
        try:
            flash(self.url(), board=self.kind, project_dir=self.project_dir,
                  out=lambda line: self.logger.info("%s", line))
        except CliError as exc:
            raise BlebridgeDriverError(f"{self.target.name}: flashing failed: {exc}"
                                       + (f" ({exc.hint})" if getattr(exc, "hint", "") else "")) from exc

    @Driver.check_active
    def prepare(self, allow_flash: bool = True) -> str:
        """Bring the board to this checkout's firmware; returns what was found and done.

        A board that does not answer is power-cycled first when the target has a power driver;
        a board whose firmware is older (or absent) is flashed when ``allow_flash`` and the
        driver's ``flash`` allow it, else BlebridgeDriverError names the flash command."""
        url = self.url()
        info = self.handshake()
        done = []
        if info is None and self.power is not None:
            self.power_cycle()
            done.append("power-cycled")
            info = self._await_boot()
        want = self.wanted_version()
        if not self.is_stale(info):
            done.append(f"firmware {info.fw_version} (protocol {info.proto[0]}.{info.proto[1]}) is current")
            return f"{self.target.name} ({url}): " + "; ".join(done)
        found = f"firmware {info.fw_version}" if info is not None else "no blebridge firmware answering"
        if not (allow_flash and self.flash):
            raise BlebridgeDriverError(
                f"{self.target.name} ({url}): {found}, older than {want}, and flashing is off for "
                f"it; flash it with `blebridge flash --port {url}`")
        self.do_flash()
        done.append(f"{found}; flashed {want}")
        return f"{self.target.name} ({url}): " + "; ".join(done)


__all__ = ["BlebridgeDriver", "BlebridgeDriverError", "port_url"]
