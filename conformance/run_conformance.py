#!/usr/bin/env python3
"""MicroPython's own BLE test suite against blebridge boards.

    python conformance/run_conformance.py --micropython ~/src/micropython [-k NAME] [--trace]
        [--stacks A,B]
    make conformance MICROPYTHON=~/src/micropython [NIMBLE=<mynewt-nimble checkout>]

Runs ``tests/run-multitests.py`` of a MicroPython checkout on ``tests/multi_bluetooth``'s
``ble_*`` and ``perf_*`` tests (the ``stress_*`` ones need a board's deep sleep or
filesystem), with two ``exec:`` instances that are ``blebridge run`` against two simulated
boards on one private air. Prints pass/fail per test and exits 1 if any test failed.

run-multitests.py starts an ``exec:`` instance as ``[PROGRAM, "-c", script]`` with no other
arguments, so each instance is a small wrapper script written into a temporary directory that
runs ``python -m blebridge.script --port sim:NAME "$@"``.

``--stacks A,B`` gives instance 0 and instance 1 their BLE host (blebridge.sim.launcher.STACKS:
``bumble``, the air's Bumble host, or ``nimble``, the real NimBLE host running the nimble port,
``make nimble-sim``): ``--stacks nimble,nimble`` is NimBLE against NimBLE, ``nimble,bumble``
NimBLE (instance 0) against the simulator's own boards. Default: ``bumble,bumble``.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = ROOT / "host"

#: The instances' simulated boards (stable names: stable addresses).
BOARD_NAMES = ("mpy-inst0", "mpy-inst1")
#: Tests that need a real board's deep sleep or filesystem.
NEEDS_A_BOARD = ("stress_",)

_RESULT = re.compile(r"^(?P<test>\S+\.py) on (?P<inst>\S+): (?P<result>pass|FAIL|skip)\s*$")


#: The boards' BLE hosts (blebridge.sim.launcher.STACKS).
STACKS = ("bumble", "nimble")


def parse_stacks(text: str) -> tuple[str, str]:
    """``A,B`` -> (A, B), each one of STACKS. Raises ValueError naming the bad one."""
    parts = tuple(p.strip() for p in text.split(","))
    if len(parts) != 2:
        raise ValueError(f"--stacks needs two stacks, one per instance (A,B), not {text!r}")
    for part in parts:
        if part not in STACKS:
            raise ValueError(f"unknown stack {part!r} in --stacks: the stacks are {', '.join(STACKS)}")
    return parts[0], parts[1]


def _wrapper(directory: Path, index: int, python: str, air: str, stack: str = "bumble") -> Path:
    path = directory / f"inst{index}"
    path.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH={shlex.quote(str(HOST))}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        f"BLEBRIDGE_AIR={shlex.quote(air)}\n"
        "export PYTHONPATH BLEBRIDGE_AIR\n"
        f"exec {shlex.quote(python)} -m blebridge.script "
        f"--port {shlex.quote(f'sim:{BOARD_NAMES[index]}?stack={stack}')} \"$@\"\n")
    path.chmod(0o755)
    return path


def select_tests(mp_tests: Path, patterns: list[str]) -> list[Path]:
    tests = sorted(p for p in (mp_tests / "multi_bluetooth").glob("*.py")
                   if not p.name.startswith(NEEDS_A_BOARD))
    if patterns:
        tests = [t for t in tests if any(k in t.name for k in patterns)]
    return tests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--micropython", required=True, type=Path,
                        help="path to a MicroPython checkout (its tests/ and tools/ are used)")
    parser.add_argument("-k", action="append", default=[], metavar="NAME",
                        help="only tests whose file name contains NAME (repeatable)")
    parser.add_argument("--trace", action="store_true", help="pass --trace-output to run-multitests")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the instances")
    parser.add_argument("--stacks", default="bumble,bumble", metavar="A,B",
                        help="BLE host of instance 0 and 1: bumble or nimble (default bumble,bumble)")
    ns = parser.parse_args(argv)
    try:
        stacks = parse_stacks(ns.stacks)
    except ValueError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2

    mp_tests = ns.micropython.resolve() / "tests"
    runner = mp_tests / "run-multitests.py"
    if not runner.is_file():
        print(f"conformance: {runner} not found; --micropython must be a MicroPython checkout",
              file=sys.stderr)
        return 2
    tests = select_tests(mp_tests, ns.k)
    if not tests:
        print("conformance: no tests selected", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="blebridge-conformance-"))
    air = str(work / "air.sock")
    try:
        inst = [_wrapper(work, i, ns.python, air, stacks[i]) for i in range(2)]
        cmd = [ns.python, str(runner), "-t", f"exec:{inst[0]}", "-t", f"exec:{inst[1]}",
               "-r", str(work / "results")]
        if ns.trace:
            cmd.append("--trace-output")
        cmd += [str(t) for t in tests]
        env = dict(os.environ, BLEBRIDGE_AIR=air)
        results: dict[str, str] = {}
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=mp_tests, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        pending = ""
        for line in proc.stdout:
            # run-multitests prints "FILE on A|B: " then the result after the test has run.
            text = pending + line
            m = _RESULT.match(text.strip())
            if m:
                name = Path(m.group("test")).name
                results[name] = m.group("result").lower()
                print(f"{name:36} {m.group('result').upper()}", flush=True)
                pending = ""
                continue
            if text.rstrip().endswith(":") and " on " in text and not text.endswith("\n\n"):
                pending = text.rstrip("\n")
                continue
            pending = ""
            print(text, end="", flush=True)
        status = proc.wait()
        elapsed = time.monotonic() - t0
        passed = sum(r == "pass" for r in results.values())
        failed = [n for n, r in results.items() if r == "fail"]
        skipped = [n for n, r in results.items() if r == "skip"]
        missing = [t.name for t in tests if t.name not in results]
        print(f"\nconformance ({stacks[0]} vs {stacks[1]}): {passed} of {len(tests)} passed, {len(failed)} failed, "
              f"{len(skipped)} skipped in {elapsed:.0f} s")
        for name in failed + missing:
            print(f"  FAIL {name}")
        for name in skipped:
            print(f"  skip {name}")
        return 0 if not failed and not missing and not skipped and status == 0 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
