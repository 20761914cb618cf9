"""pytest plugin: run blebridge's end-to-end tests on real boards (a "rig") or simulated ones.

Load it with ``-p hil.plugin`` (``make hil`` does). Configuration, first match wins:

- ``--hil-rig FILE``: a TOML rig file (format in hil/README.md, example hil/rig.example.toml);
- ``--hil-port P`` (repeatable): ports as blebridge opens them: /dev/ttyACM0, COM5,
  rfc2217://rig:4000, id:<USB serial>;
- env ``BLEBRIDGE_HIL_PORTS``: the same, separated by commas or spaces;
- ``--lg-env FILE`` (or env ``LG_ENV``), labgrid's pytest options, with ``--lg-coordinator
  HOST:PORT`` (or the file's ``coordinator_address`` option, or env ``LG_COORDINATOR``): the
  boards are places of a labgrid lab, acquired per test (hil/labgrid_rig.py); pytest-xdist
  workers (``-n N``) share the places.

Fixtures (each also overridable by a test module, as pytest-embedded does):

- ``hil_rig``: the configured ``Rig`` (``rig.boards`` empty when none);
- ``board_urls``: a function, ``board_urls(n)`` -> n port specs: the rig's ports when a rig is
  configured (the test is skipped if the rig has fewer than n), else n ``sim:`` boards of the test's
  own on an air private to the session;
- ``boards``: a tuple of opened ``blebridge.Board``s, as many as ``@pytest.mark.boards(n)`` asks
  (default 1), closed after the test.

Tests marked ``hil`` are the ones the HIL run (``-m hil``, ``make hil``) puts on the rig. In that
run without a rig they are skipped with a message saying how to configure one; in any other run
they take simulated boards like every other test. With a rig, each board is flashed first
(``blebridge flash``) when its firmware is older than this checkout's or does not answer, unless
``--hil-no-flash``.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_PORTS = "BLEBRIDGE_HIL_PORTS"
REPO = Path(__file__).resolve().parents[1]
NO_RIG_MESSAGE = ("no HIL rig configured: pass --hil-rig rig.toml or --hil-port /dev/ttyACM0 "
                  f"(repeatable), or set {ENV_PORTS}=/dev/ttyACM0,rfc2217://rig:4000, or "
                  "pass --lg-env lab.yaml (labgrid places); see hil/README.md")


class RigError(ValueError):
    """The rig file or port list is malformed; the message names the file and entry."""


@dataclass(frozen=True)
class RigBoard:
    """One board of a rig (labgrid's Resource: where it is; Strategy: flash it if stale)."""

    port: str
    kind: Optional[str] = None      # PlatformIO env / board kind; None: from VID:PID
    flash: bool = True              # may `blebridge flash` reach it (a local port or esptool over RFC 2217)
    name: str = ""


@dataclass
class Rig:
    boards: list[RigBoard] = field(default_factory=list)
    source: str = ""                # where the configuration came from, for messages
    lab: Optional[Any] = None       # labgrid mode: hil.labgrid_rig.LabRig (boards stays empty)

    @property
    def configured(self) -> bool:
        return bool(self.boards) or self.lab is not None


def parse_rig_file(path: Path) -> Rig:
    """Read a TOML rig file: ``[[board]]`` tables with ``port`` and optional ``kind``, ``flash``,
    ``name``."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RigError(f"rig file {path}: {exc}") from exc
    entries = data.get("board", [])
    if not isinstance(entries, list) or not entries:
        raise RigError(f"rig file {path}: no [[board]] entries")
    boards = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("port"), str) or not entry["port"]:
            raise RigError(f"rig file {path}: board {i} has no port")
        unknown = set(entry) - {"port", "kind", "flash", "name"}
        if unknown:
            raise RigError(f"rig file {path}: board {i}: unknown keys {sorted(unknown)}")
        boards.append(RigBoard(port=entry["port"], kind=entry.get("kind"),
                               flash=bool(entry.get("flash", True)), name=entry.get("name", "")))
    return Rig(boards, source=str(path))


def split_ports(text: str) -> list[str]:
    return [p for p in re.split(r"[,\s]+", text) if p]


def configured_rig(rig_file: Optional[str], ports: Optional[list[str]], env: dict[str, str],
                   lg_env: Optional[str] = None, lg_coordinator: Optional[str] = None) -> Rig:
    if rig_file:
        return parse_rig_file(Path(rig_file))
    if ports:
        return Rig([RigBoard(p) for p in ports], source="--hil-port")
    if env.get(ENV_PORTS, "").strip():
        return Rig([RigBoard(p) for p in split_ports(env[ENV_PORTS])], source=ENV_PORTS)
    lg_env = lg_env or env.get("LG_ENV")
    if lg_env:
        from hil.labgrid_rig import LabgridRigError, load_lab_rig
        try:
            lab = load_lab_rig(lg_env, lg_coordinator)
        except LabgridRigError as exc:
            raise RigError(str(exc)) from exc
        return Rig(source=f"labgrid places of {lg_env} on {lab.coordinator}", lab=lab)
    return Rig()


def sim_names(test_id: str, n: int) -> list[str]:
    """n simulated board specs unique to one test (stable names give stable addresses)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", test_id).strip("-")[-40:] or "test"
    return [f"sim:hil-{slug}-{i}" for i in range(n)]


def urls_for(rig: Rig, test_id: str, n: int, sim_air: Optional[str] = None) -> list[str]:
    """n port specs for a test: rig ports, else sim names (on the air socket sim_air when given).
    pytest.skip when the rig is too small."""
    if n < 1:
        raise ValueError(f"board_urls: n must be at least 1, got {n}")
    if not rig.configured:
        names = sim_names(test_id, n)
        return [f"{u}?air={sim_air}" for u in names] if sim_air else names
    if len(rig.boards) < n:
        pytest.skip(f"needs {n} boards, the rig ({rig.source}) has {len(rig.boards)}")
    return [b.port for b in rig.boards[:n]]


# -- flashing stale boards ---------------------------------------------------------------------

def checkout_fw_version() -> str:
    """BB_FW_VERSION of this checkout's firmware (firmware/core/bb_config.h)."""
    from blebridge.fwcheck import FirmwareVersionError
    from blebridge.fwcheck import checkout_fw_version as version_of
    try:
        return version_of(REPO)
    except FirmwareVersionError as exc:
        raise RigError(str(exc)) from exc


def is_stale(fw_version: Optional[str], proto: Optional[tuple[int, int]], want_fw: str,
             want_proto: tuple[int, int]) -> bool:
    """True when a board must be flashed: no firmware answered, or it is older than ours."""
    from blebridge.fwcheck import is_stale as stale
    return stale(fw_version, proto, want_fw, want_proto)


def prepare_board(board: RigBoard, allow_flash: bool) -> str:
    """Bring one rig board to this checkout's firmware; returns what was done (for the report)."""
    from blebridge import BlebridgeError, open_board
    from blebridge import protocol as P

    fw = proto = None
    try:
        with open_board(board.port) as b:
            fw, proto = b.info.fw_version, b.info.proto
    except BlebridgeError:
        pass
    want = checkout_fw_version()
    if not is_stale(fw, proto, want, (P.PROTO_MAJOR, P.PROTO_MINOR)):
        return f"{board.port}: firmware {fw} (protocol {proto[0]}.{proto[1]}) is current"
    found = f"firmware {fw}" if fw else "no blebridge firmware answering"
    if not (allow_flash and board.flash):
        raise RigError(f"{board.port}: {found}, older than {want}, and flashing is off for it; "
                       f"flash it with `blebridge flash --port {board.port}`")
    from blebridge.flash import flash
    flash(board.port, board=board.kind)
    return f"{board.port}: {found}; flashed {want}"


# -- pytest hooks and fixtures -------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "blebridge hardware-in-the-loop (hil/README.md)")
    group.addoption("--hil-rig", metavar="FILE", help="TOML rig file naming the boards' ports")
    group.addoption("--hil-port", action="append", default=[], metavar="P",
                    help="a board's port (repeatable): /dev/ttyACM0, rfc2217://host:port, id:SERIAL")
    group.addoption("--hil-no-flash", action="store_true",
                    help="never flash rig boards, even when their firmware is older")
    # labgrid's own pytest plugin (installed with labgrid) defines --lg-env and --lg-coordinator;
    # without labgrid they are defined here, so that using them says what to install.
    import importlib.util
    if importlib.util.find_spec("labgrid") is None:
        group.addoption("--lg-env", dest="lg_env", metavar="FILE",
                        help="labgrid environment file naming the lab's places (needs blebridge[labgrid])")
        group.addoption("--lg-coordinator", dest="lg_coordinator", metavar="HOST:PORT",
                        help="labgrid coordinator (needs blebridge[labgrid])")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: runs on the rig's boards in the HIL run, -m hil "
                            "(hil/README.md); on simulated boards otherwise")
    config.addinivalue_line("markers", "boards(n): the `boards` fixture opens n boards")
    try:
        rig = configured_rig(config.getoption("--hil-rig", None), config.getoption("--hil-port", None),
                             dict(os.environ), config.getoption("lg_env", None),
                             config.getoption("lg_coordinator", None))
    except RigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[_RIG_KEY] = rig


_RIG_KEY = pytest.StashKey[Rig]()


def pytest_report_header(config: pytest.Config) -> str:
    rig = config.stash[_RIG_KEY]
    if not rig.configured:
        if selects_hil(config.getoption("markexpr", "") or ""):
            return "hil: no rig (tests marked hil are skipped; see hil/README.md)"
        return "hil: no rig (simulated boards)"
    if rig.lab is not None:
        return f"hil: {rig.source}: " + ", ".join(p.place for p in rig.lab.places)
    return f"hil: rig from {rig.source}: " + ", ".join(b.port for b in rig.boards)


def selects_hil(markexpr: str) -> bool:
    """True when a ``-m`` expression makes this the HIL run: it selects a test marked ``hil`` and
    no unmarked test (``hil``, ``hil and not slow``; not ``not hil``, not ``slow``)."""
    if not markexpr.strip():
        return False
    try:
        from _pytest.mark.expression import Expression
        expr = Expression.compile(markexpr)
    except Exception:  # private pytest API moved, or a malformed expression pytest itself reports
        return re.search(r"(?<!not )\bhil\b", markexpr) is not None
    return expr.evaluate(lambda name, **kw: name == "hil") and not expr.evaluate(lambda name, **kw: False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rig = config.stash[_RIG_KEY]
    if rig.lab is not None and config.pluginmanager.has_plugin("timeout"):
        # A test may wait for places other workers' tests hold: its timeout (pytest-timeout,
        # counting setup) grows by that wait. A test's own timeout marker comes first.
        from hil.labgrid_rig import ACQUIRE_TIMEOUT_S
        base = float(config.getini("timeout") or 0)
        if base > 0:
            for item in items:
                item.add_marker(pytest.mark.timeout(base + ACQUIRE_TIMEOUT_S))
    # Outside the HIL run, tests marked hil run on simulated boards, so `make test` covers them.
    if config.stash[_RIG_KEY].configured or not selects_hil(config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason=NO_RIG_MESSAGE)
    for item in items:
        if item.get_closest_marker("hil") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def hil_rig(pytestconfig: pytest.Config) -> Rig:
    return pytestconfig.stash[_RIG_KEY]


@pytest.fixture(scope="session")
def hil_place_pool(hil_rig: Rig, pytestconfig: pytest.Config) -> Iterator[Any]:
    """labgrid mode: this process's (this xdist worker's) connection to the lab's places."""
    from hil.labgrid_rig import PlacePool
    pool = PlacePool(hil_rig.lab, allow_flash=not pytestconfig.getoption("--hil-no-flash", False))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def hil_prepared(hil_rig: Rig, pytestconfig: pytest.Config) -> list[str]:
    """Flash stale rig boards once per session; the lines say what was found and done."""
    done = []
    for b in hil_rig.boards:
        try:
            done.append(prepare_board(b, allow_flash=not pytestconfig.getoption("--hil-no-flash", False)))
        except Exception as exc:  # a flash failure fails the tests that need the rig, with its cause
            pytest.fail(f"preparing rig board {b.port}: {exc}", pytrace=False)
    return done


@pytest.fixture(scope="session")
def hil_sim_air(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Air socket of the simulated boards board_urls gives without a rig. Private to the session:
    the boards' names (hence addresses) are the same in every run, so runs sharing the default air
    would open each other's boards and see each other's advertising."""
    return str(tmp_path_factory.mktemp("hil-air") / "air.sock")


@pytest.fixture
def board_urls(request: pytest.FixtureRequest, hil_rig: Rig) -> Callable[[int], list[str]]:
    if hil_rig.lab is not None:
        pool = request.getfixturevalue("hil_place_pool")

        def lab_urls(n: int) -> list[str]:
            if n < 1:
                raise ValueError(f"board_urls: n must be at least 1, got {n}")
            held, urls = pool.acquire(n)
            request.addfinalizer(lambda: pool.release_soon(held))
            try:
                pool.prepare(held)
            except Exception as exc:  # a board that cannot be brought up fails the test, saying why
                pytest.fail(f"preparing labgrid places {', '.join(held)}: {exc}", pytrace=False)
            return urls
        return lab_urls
    if hil_rig.configured:
        request.getfixturevalue("hil_prepared")
        return lambda n: urls_for(hil_rig, request.node.nodeid, n)
    air = request.getfixturevalue("hil_sim_air")
    return lambda n: urls_for(hil_rig, request.node.nodeid, n, sim_air=air)


@pytest.fixture
def boards(request: pytest.FixtureRequest, board_urls: Callable[[int], list[str]]) -> Iterator[tuple[Any, ...]]:
    from blebridge import open_board

    marker = request.node.get_closest_marker("boards")
    n = int(marker.args[0]) if marker is not None and marker.args else 1
    opened: list[Any] = []
    try:
        for url in board_urls(n):
            opened.append(open_board(url))
        for b in opened:
            b.call("reset")
        yield tuple(opened)
    finally:
        for b in opened:
            b.close()
