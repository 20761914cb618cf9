"""USB serial ports on this machine and the boards blebridge knows by USB VID:PID.

Used by `blebridge list`, the ``id:SERIAL`` and ``auto`` transports, and `blebridge flash`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import serial.tools.list_ports


class KnownBoard(NamedTuple):
    kind: str          # short board name shown by `blebridge list`
    description: str
    bootloader: bool   # the board is in its bootloader (flashable, not running our firmware)
    certain: bool      # False: a generic USB-UART bridge that often carries an ESP32


#: Boards recognised by (VID, PID). USB-UART bridges are marked "esp32?": an ESP32 dev kit is
#: the usual thing behind them, but any device could be.
KNOWN_BOARDS: dict[tuple[int, int], KnownBoard] = {
    (0x239A, 0x8029): KnownBoard("feather-nrf52840", "Adafruit Feather nRF52840", False, True),
    (0x239A, 0x0029): KnownBoard("feather-nrf52840", "Adafruit Feather nRF52840 (bootloader)", True, True),
    (0x1915, 0x521F): KnownBoard("nrf52840-dongle", "Nordic nRF52840 Dongle (bootloader)", True, True),
    (0x1915, 0x520F): KnownBoard("nrf52840-dongle", "Nordic nRF52840 Dongle", False, True),
    (0x303A, 0x1001): KnownBoard("esp32-s3", "Espressif ESP32-S3 (USB JTAG/serial)", False, True),
    (0x10C4, 0xEA60): KnownBoard("esp32?", "CP210x USB-UART bridge", False, False),
    (0x1A86, 0x7523): KnownBoard("esp32?", "CH340 USB-UART bridge", False, False),
    (0x1A86, 0x55D4): KnownBoard("esp32?", "CH9102 USB-UART bridge", False, False),
    (0x0403, 0x6001): KnownBoard("esp32?", "FTDI FT232R USB-UART bridge", False, False),
    (0x0403, 0x6015): KnownBoard("esp32?", "FTDI FT231X USB-UART bridge", False, False),
}


@dataclass(frozen=True)
class PortInfo:
    """One serial port as `blebridge list` shows it."""

    device: str
    serial_number: Optional[str]
    vid: Optional[int]
    pid: Optional[int]
    manufacturer: Optional[str]
    product: Optional[str]
    location: Optional[str]
    known: Optional[KnownBoard]

    @property
    def vid_pid(self) -> str:
        if self.vid is None or self.pid is None:
            return ""
        return f"{self.vid:04X}:{self.pid:04X}"


#: Adafruit VID:PIDs that the Feather nRF52840 shares with the nRF52840 Dongle: the Adafruit
#: bootloader built for the dongle (pca10059) enumerates as the Feather's bootloader (its
#: board.h: "Shared VID/PID with Feather nRF52840"), and our dongle firmware keeps the Feather's
#: application VID:PID (boards/nrf52840_dongle_adafruit.json), which adafruit-nrfutil's serial
#: DFU and the 1200-baud touch work with. Their USB product strings differ (SHARED_NRF_PRODUCTS).
SHARED_NRF_VID_PIDS = frozenset({(0x239A, 0x8029), (0x239A, 0x0029)})

#: Board kind by a word of the USB product string (lower case) on SHARED_NRF_VID_PIDS: the
#: Adafruit bootloader reports its board's model (BLEDIS_MODEL: "PCA10059", "Feather nRF52840
#: Express"), our firmware its board definition's usb_product ("nRF52840 Dongle", "Feather
#: nRF52840 Express").
SHARED_NRF_PRODUCTS = (("pca10059", "nrf52840-dongle"), ("dongle", "nrf52840-dongle"),
                       ("feather", "feather-nrf52840"))

_DONGLE_AS_SHARED = {
    (0x239A, 0x8029): KnownBoard("nrf52840-dongle", "Nordic nRF52840 Dongle (Adafruit core firmware)", False, True),
    (0x239A, 0x0029): KnownBoard("nrf52840-dongle", "Nordic nRF52840 Dongle (Adafruit bootloader)", True, True),
}


def shared_nrf_kind(product: Optional[str]) -> Optional[str]:
    """Board kind a USB product string names on SHARED_NRF_VID_PIDS, None when it names none."""
    text = (product or "").lower()
    for word, kind in SHARED_NRF_PRODUCTS:
        if word in text:
            return kind
    return None


def known_board(vid: Optional[int], pid: Optional[int],
                product: Optional[str] = None) -> Optional[KnownBoard]:
    """The board behind a USB VID:PID; on SHARED_NRF_VID_PIDS a product string naming the
    dongle makes it the dongle (else the Feather entry: `blebridge flash` asks for more)."""
    if vid is None or pid is None:
        return None
    if (vid, pid) in SHARED_NRF_VID_PIDS and shared_nrf_kind(product) == "nrf52840-dongle":
        return _DONGLE_AS_SHARED[(vid, pid)]
    return KNOWN_BOARDS.get((vid, pid))


def list_ports(include_links: bool = False) -> list[PortInfo]:
    """Serial ports present, known boards first (certain before guessed), then by device."""
    out = []
    for p in serial.tools.list_ports.comports(include_links=include_links):
        out.append(PortInfo(
            device=p.device, serial_number=p.serial_number, vid=p.vid, pid=p.pid,
            manufacturer=p.manufacturer, product=p.product, location=p.location,
            known=known_board(p.vid, p.pid, p.product),
        ))

    def rank(pi: PortInfo) -> tuple[int, str]:
        if pi.known is None:
            return (3, pi.device)
        if pi.known.bootloader:
            return (2, pi.device)
        return (0 if pi.known.certain else 1, pi.device)

    return sorted(out, key=rank)


def board_candidates() -> list[PortInfo]:
    """Ports that may run our firmware (known boards not in their bootloader), best first."""
    return [p for p in list_ports() if p.known is not None and not p.known.bootloader]


def find_by_serial(serial_number: str) -> PortInfo:
    """The port whose USB serial number is ``serial_number`` (exact, else a unique prefix).

    Raises LookupError naming the serial numbers present when none or several match.
    """
    ports = [p for p in list_ports() if p.serial_number]
    exact = [p for p in ports if p.serial_number == serial_number]
    if exact:
        return exact[0]
    prefixed = [p for p in ports if p.serial_number.startswith(serial_number)]  # type: ignore[union-attr]
    if len(prefixed) == 1:
        return prefixed[0]
    present = ", ".join(sorted(p.serial_number for p in ports if p.serial_number)) or "none"
    if prefixed:
        raise LookupError(f"serial number {serial_number!r} is ambiguous (matches: "
                          f"{', '.join(p.serial_number or '' for p in prefixed)})")
    raise LookupError(f"no USB port with serial number {serial_number!r} (present: {present})")
