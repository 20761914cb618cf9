"""Is a board's firmware older than the one a checkout builds? (hil plugin, labgrid driver)"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional


class FirmwareVersionError(ValueError):
    """The checkout's firmware version cannot be read; the message names the file."""


def checkout_fw_version(project_dir: Path) -> str:
    """BB_FW_VERSION of the firmware in the checkout at ``project_dir``
    (firmware/core/bb_config.h)."""
    config = Path(project_dir) / "firmware" / "core" / "bb_config.h"
    try:
        text = config.read_text()
    except OSError as exc:
        raise FirmwareVersionError(f"cannot read {config}: {exc}") from exc
    m = re.search(r'#define\s+BB_FW_VERSION\s+"([^"]+)"', text)
    if not m:
        raise FirmwareVersionError(f"BB_FW_VERSION not found in {config}")
    return m.group(1)


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def is_stale(fw_version: Optional[str], proto: Optional[tuple[int, int]], want_fw: str,
             want_proto: tuple[int, int]) -> bool:
    """True when a board must be flashed: no firmware answered, or it is older than ours."""
    if fw_version is None or proto is None:
        return True
    if proto[0] != want_proto[0] or proto < want_proto:
        return True
    return _version_tuple(fw_version) < _version_tuple(want_fw)
