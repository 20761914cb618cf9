"""The hil plugin's labgrid mode: boards come from places of a labgrid coordinator.

A labgrid environment file (``--lg-env``, labgrid's pytest convention) names the lab's places
for blebridge tests, one target per place (``RemotePlace``), and optionally the driver settings
of the place's boards (``BlebridgeDriver``) and a power driver. Each test acquires as many places
as it needs boards, holds them while it runs and releases them afterwards, so pytest-xdist
workers (``-n N``) share the lab: each worker gets places nobody else holds.

Acquiring without deadlock: first every free place is tried without waiting (released again if
they do not make enough boards); if that fails, places are taken in the environment file's order,
waiting for each one. Only that second path waits while holding places, and everyone takes them
in the same order, so no two workers can wait on each other.

Before a worker first uses a place's boards it checks their firmware (BlebridgeDriver.prepare:
power-cycle when silent and a power driver is there, flash when stale).
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Optional

#: Seconds a test may wait for the places it needs (other workers' tests end meanwhile).
ACQUIRE_TIMEOUT_S = 300.0
#: Poll period (s) while waiting for a busy place; jittered so workers do not move in step.
ACQUIRE_POLL_S = 0.25
#: Seconds a release may take (the exporter stops ser2net: about 2 s).
RELEASE_TIMEOUT_S = 60.0


class LabgridRigError(ValueError):
    """The environment file or the coordinator's places cannot serve as a rig."""


@dataclass(frozen=True)
class LabPlace:
    target: str                     # the environment file's target name
    place: str                      # the coordinator's place (RemotePlace name)
    drivers: list = field(default_factory=list)   # the target's drivers config (labgrid's named list)


@dataclass
class LabRig:
    env_file: str
    coordinator: str
    places: list[LabPlace]


def load_lab_rig(env_file: str, coordinator: Optional[str]) -> LabRig:
    """Read the places from a labgrid environment file (every target with a RemotePlace)."""
    try:
        import blebridge.labgrid.driver  # noqa: F401  - registers BlebridgeDriver for the file
        from labgrid import Environment
        from labgrid.factory import target_factory
    except ImportError as exc:
        raise LabgridRigError(f"--lg-env needs labgrid: pip install 'blebridge[labgrid]' ({exc})") from exc
    try:
        env = Environment(config_file=env_file)
    except Exception as exc:   # labgrid raises its own config errors, or OSError
        raise LabgridRigError(f"labgrid environment {env_file}: {exc}") from exc
    places = []
    for tname, tconfig in env.config.get_targets().items():
        resources, _ = target_factory.normalize_config(tconfig or {})
        remote = resources.get("RemotePlace", {})
        if len(remote) != 1:
            raise LabgridRigError(f"labgrid environment {env_file}: target {tname} needs exactly one "
                                  "RemotePlace (the place of its boards)")
        name = next(iter(remote))          # normalize_config keys resources by their name
        if not name:
            raise LabgridRigError(f"labgrid environment {env_file}: target {tname}: RemotePlace has no name")
        drivers = list((tconfig or {}).get("drivers") or [])
        if isinstance((tconfig or {}).get("drivers"), dict):
            drivers = [{cls: args} for cls, args in tconfig["drivers"].items()]
        places.append(LabPlace(target=tname, place=name, drivers=drivers))
    if not places:
        raise LabgridRigError(f"labgrid environment {env_file}: no targets")
    address = (coordinator or env.config.get_option("coordinator_address", None)
               or os.environ.get("LG_COORDINATOR"))
    from blebridge.labgrid.coordinator import coordinator_address
    return LabRig(env_file=env_file, coordinator=coordinator_address(address), places=places)


class PlacePool:
    """One worker's view of the lab: acquires and releases places, prepares boards once."""

    def __init__(self, rig: LabRig, allow_flash: bool) -> None:
        from blebridge.labgrid.coordinator import Coordinator
        self.rig = rig
        self.allow_flash = allow_flash
        self.coord = Coordinator(rig.coordinator)
        self.prepared: dict[str, list[str]] = {}     # place -> report lines
        self.board_counts: dict[str, int] = {}       # place -> boards, once seen
        self._releasing: list[tuple[str, Any]] = []  # (place, future) of release_soon

    def close(self) -> None:
        try:
            self.wait_released()
        finally:
            self.coord.close()

    def wait_released(self) -> None:
        """Wait for the releases release_soon started (warning about those that failed)."""
        pending, self._releasing = self._releasing, []
        for place, future in pending:
            try:
                future.result(RELEASE_TIMEOUT_S)
            except Exception as exc:
                import warnings
                warnings.warn(f"could not release labgrid place {place}: {exc}", RuntimeWarning)

    def release_soon(self, places: list[str]) -> None:
        """Release places without waiting (a test's teardown): the next test goes on meanwhile."""
        self._releasing = [(p, f) for p, f in self._releasing if not f.done()]
        for place in places:
            self._releasing.append((place, self.coord.release_soon(place)))

    def _try(self, place: str) -> bool:
        from blebridge.labgrid.coordinator import PlaceBusyError
        try:
            self.coord.acquire(place)
            return True
        except PlaceBusyError:
            return False

    def _boards(self, place: str) -> list[str]:
        ports = self.coord.serial_ports(place)
        self.board_counts[place] = len(ports)
        return [p.name for p in ports]

    def acquire(self, n: int) -> tuple[list[str], list[str]]:
        """(places held, n port specs); pytest.skip when the lab's places hold fewer boards."""
        import pytest
        if len(self.board_counts) == len(self.rig.places) and sum(self.board_counts.values()) < n:
            pytest.skip(f"needs {n} boards, the lab's places ({self.rig.env_file}) have "
                        f"{sum(self.board_counts.values())}")
        held: list[str] = []
        try:
            urls = self._acquire_free(n, held) or self._acquire_in_order(n, held)
        except BaseException:
            self.release(held)
            raise
        if urls is None:
            total = sum(self.board_counts.values())
            self.release(held)
            pytest.skip(f"needs {n} boards, the lab's places ({self.rig.env_file}) have {total}")
        return held, urls[:n]

    def _urls(self, held: list[str]) -> list[str]:
        urls = []
        for place in held:
            names = self._boards(place)
            for name in names:
                suffix = f"/{name}" if len(names) > 1 else ""
                urls.append(f"labgrid:{place}{suffix}?coordinator={self.rig.coordinator}")
        return urls

    def _acquire_free(self, n: int, held: list[str]) -> Optional[list[str]]:
        count = 0
        for lp in self.rig.places:
            if count >= n:
                break
            if self._try(lp.place):
                held.append(lp.place)
                count += len(self._boards(lp.place))
        if count >= n:
            return self._urls(held)
        self.release(held)
        held.clear()
        return None

    def _acquire_in_order(self, n: int, held: list[str]) -> Optional[list[str]]:
        deadline = time.monotonic() + ACQUIRE_TIMEOUT_S
        count = 0
        for lp in self.rig.places:
            if count >= n:
                break
            while not self._try(lp.place):
                if time.monotonic() >= deadline:
                    raise LabgridRigError(f"place {lp.place} still held by "
                                          f"{self.coord.acquired_by(lp.place)} after {ACQUIRE_TIMEOUT_S:.0f} s")
                time.sleep(ACQUIRE_POLL_S * (0.5 + random.random()))
            held.append(lp.place)
            count += len(self._boards(lp.place))
        return self._urls(held) if count >= n else None

    def release(self, places: list[str]) -> None:
        for place in places:
            try:
                self.coord.release(place)
            except Exception as exc:   # a release failing must not hide the test's own outcome
                import warnings
                warnings.warn(f"could not release labgrid place {place}: {exc}", RuntimeWarning)

    def prepare(self, places: list[str]) -> list[str]:
        """BlebridgeDriver.prepare on every board of each place this worker has not checked."""
        lines = []
        for place in places:
            if place not in self.prepared:
                self.prepared[place] = self._prepare_place(place)
            lines += self.prepared[place]
        return lines

    def _prepare_place(self, place: str) -> list[str]:
        from blebridge.labgrid.driver import BlebridgeDriver
        target = self.target(place)
        try:
            return [d.prepare(allow_flash=self.allow_flash)
                    for d in (target.get_driver(BlebridgeDriver, name=name) for name in self._boards(place))]
        finally:
            target.cleanup()

    def target(self, place: str) -> Any:
        """A labgrid Target of the acquired place: its resources as the coordinator has them,
        the environment's drivers for it (power...), one BlebridgeDriver per serial port
        (settings from the environment's BlebridgeDriver, named after the port or unnamed)."""
        from labgrid.factory import target_factory
        lp = next(p for p in self.rig.places if p.place == place)
        resources = []
        entries = sorted(self.coord.resources(place).items())
        for (name, cls), entry in entries:
            resources.append({"cls": cls, "name": name, **entry.args})
        drivers = []
        bb_args: dict[str, dict] = {}
        for item in target_factory._convert_to_named_list(list(lp.drivers)):
            if item.get("cls") == "BlebridgeDriver":
                bb_args[item.get("name") or ""] = {k: v for k, v in item.items()
                                                    if k not in ("cls", "name", "bindings")}
            else:
                drivers.append(item)
        for name in self._boards(place):
            args = bb_args.get(name, bb_args.get("", {}))
            drivers.append({"cls": "BlebridgeDriver", "name": name, "bindings": {"port": name}, **args})
        target = target_factory.make_target(lp.target, {"resources": resources, "drivers": drivers})
        # What labgrid's RemotePlace adds to remote resources: the exporter's proxy settings.
        extras = {name: entry.extra for (name, _), entry in entries}
        for resource in target.resources:
            resource.extra = extras.get(resource.name, {})
        return target
