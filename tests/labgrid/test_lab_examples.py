"""The lab configuration examples in hil/labgrid/ are what labgrid and the hil plugin accept."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("labgrid")

from labgrid.factory import target_factory  # noqa: E402
from labgrid.remote.config import ResourceConfig  # noqa: E402

from hil.labgrid_rig import load_lab_rig  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "hil" / "labgrid"


def test_exporter_example_matches_every_board_by_usb_serial_number(capsys):
    groups = ResourceConfig(str(EXAMPLES / "exporter.yaml")).data
    capsys.readouterr()     # labgrid prints the rendered file
    ports = {name: g["USBSerialPort"] for name, g in groups.items()}
    assert ports and all("ID_SERIAL_SHORT" in p["match"] for p in ports.values())


def test_environment_example_names_one_place_per_target():
    rig = load_lab_rig(str(EXAMPLES / "env.yaml"), None)
    assert [p.place for p in rig.places] == [
        "bb-feather-1", "bb-dongle-1", "bb-esp32-1"]
    assert rig.coordinator == "labhost:20408"


def test_environment_examples_driver_settings_are_accepted():
    rig = load_lab_rig(str(EXAMPLES / "env.yaml"), None)
    for lp in rig.places:
        drivers = [d for d in target_factory._convert_to_named_list(lp.drivers) if d["cls"] == "BlebridgeDriver"]
        target = target_factory.make_target(lp.target, {
            "resources": [{"NetworkSerialPort": {"host": "rack1", "port": 4000}}],
            "drivers": drivers})
        assert target.get_driver("BlebridgeDriver", activate=False).kind
