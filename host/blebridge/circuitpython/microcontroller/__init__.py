"""CircuitPython's ``microcontroller`` module, as far as it means something on a PC running
the script against a BLE board. ``import microcontroller`` gives it once blebridge.circuitpython
is imported (binding.py), under ``blebridge run`` and in plain Python alike: Blinka's, which PyPI
installs with adafruit_ble, has no ``cpu`` on a PC, and adafruit_ble's DeviceInfoService reads
``microcontroller.cpu.uid`` for its serial number.

``cpu`` (and ``cpus``) is the board's processor: ``uid`` from its Bluetooth address (the board
of the current adapter: ``blebridge.circuitpython.using(adapter)``'s, else ``_bleio.adapter``),
``frequency`` in Hz, ``temperature`` and ``voltage`` None (CircuitPython's value when the chip
cannot tell), ``reset_reason`` POWER_ON (``blebridge run`` resets the board before the script).
``reset()`` ends the script as the reboot ends it on a board; ``on_next_reset`` is accepted and
changes nothing (no next boot here); ``delay_us`` waits; ``nvm`` and ``watchdog`` are None,
as on a board without them. The pins (``Pin``, ``microcontroller.pin``) drive hardware this PC
does not have: `import microcontroller.pin` fails as `import board` does.
"""
import sys
import time


class RunMode:
    """Modes of the next boot (``on_next_reset``)."""
    NORMAL = "NORMAL"
    SAFE_MODE = "SAFE_MODE"
    UF2 = "UF2"
    BOOTLOADER = "BOOTLOADER"


class ResetReason:
    """Why the processor last reset (``cpu.reset_reason``)."""
    POWER_ON = "POWER_ON"
    BROWNOUT = "BROWNOUT"
    SOFTWARE = "SOFTWARE"
    DEEP_SLEEP_ALARM = "DEEP_SLEEP_ALARM"
    RESET_PIN = "RESET_PIN"
    WATCHDOG = "WATCHDOG"
    UNKNOWN = "UNKNOWN"
    RESCUE_DEBUG = "RESCUE_DEBUG"


#: The board's processor clock reported as ``cpu.frequency`` (Hz): the nRF52840's, the chip
#: CircuitPython's _bleio is written for.
FREQUENCY_HZ = 64_000_000


class Processor:
    """``microcontroller.cpu``."""

    frequency = FREQUENCY_HZ
    temperature = None
    voltage = None
    reset_reason = ResetReason.POWER_ON

    @property
    def uid(self) -> bytearray:
        """The board's Bluetooth address, most significant byte first (unique per board)."""
        from blebridge.circuitpython._bleio.adapters import current_adapter
        return bytearray(reversed(current_adapter().address.address_bytes))


cpu = Processor()
cpus = (cpu,)
nvm = None
watchdog = None


def delay_us(delay: int) -> None:
    """Wait ``delay`` microseconds."""
    time.sleep(delay / 1_000_000)


def disable_interrupts() -> None:
    return None


def enable_interrupts() -> None:
    return None


def on_next_reset(run_mode: str) -> None:
    if run_mode not in (RunMode.NORMAL, RunMode.SAFE_MODE, RunMode.UF2, RunMode.BOOTLOADER):
        raise ValueError("Invalid run mode")


def reset() -> None:
    """End the script, as the reset ends it on a board (status 0)."""
    sys.exit(0)


__all__ = ["cpu", "cpus", "nvm", "watchdog", "delay_us", "disable_interrupts",
           "enable_interrupts", "on_next_reset", "reset", "RunMode", "ResetReason", "Processor"]
