"""PlatformIO extra script (every env): bring zcbor's C runtime into the build.

zcbor's C sources ship inside the `zcbor` package on PyPI (``include/`` and ``src/`` next to its
Python code); they are never copied into this repository. This script finds the package
directory without importing it (its Python half does not import next to cbor2 6), installs the
pinned version (ZCBOR_VERSION) into PlatformIO's own Python when the package is missing, refuses
another installed version (the firmware is built and tested against the pinned C runtime), then:

- Arduino-based envs (nrf_sd): adds ``include/`` to the include path and compiles
  ``src/zcbor_{common,decode,encode}.c`` into ``$BUILD_DIR/zcbor``;
- ESP-IDF envs (nimble): exports ``BB_ZCBOR_DIR`` for firmware/ports/nimble/main/CMakeLists.txt,
  which compiles the same files as part of its component.
"""

import importlib
import importlib.metadata
import importlib.util
import os
import sys

Import("env")  # noqa: F821  (provided by PlatformIO's SCons)

#: The zcbor release whose C runtime the firmware is built with (PlatformIO builds only; the
#: native build and tests take the venv's zcbor, pyproject.toml). 0.9.1: newest on PyPI when pinned.
ZCBOR_VERSION = "0.9.1"
ZCBOR_REQUIREMENT = "zcbor==%s" % ZCBOR_VERSION
ZCBOR_SOURCES = ("zcbor_common.c", "zcbor_decode.c", "zcbor_encode.c")


def find_zcbor():
    spec = importlib.util.find_spec("zcbor")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = list(spec.submodule_search_locations)[0]
    if not os.path.isfile(os.path.join(root, "include", "zcbor_common.h")):
        return None
    return root


root = find_zcbor()
if root is None:
    print("zcbor.py: installing %s into PlatformIO's Python for its C runtime" % ZCBOR_REQUIREMENT)
    env.Execute('"$PYTHONEXE" -m pip install --quiet "%s"' % ZCBOR_REQUIREMENT)  # noqa: F821
    importlib.invalidate_caches()
    root = find_zcbor()
if root is None:
    sys.stderr.write(
        "zcbor.py: error: the zcbor package (with its C runtime in include/ and src/) was not "
        "found for %s; install it with: %s -m pip install '%s'\n"
        % (sys.executable, sys.executable, ZCBOR_REQUIREMENT)
    )
    env.Exit(1)  # noqa: F821

try:
    found_version = importlib.metadata.version("zcbor")
except importlib.metadata.PackageNotFoundError:
    found_version = None
if found_version != ZCBOR_VERSION:
    sys.stderr.write(
        "zcbor.py: error: zcbor %s is installed for %s, the firmware is pinned to %s; install it "
        "with: %s -m pip install '%s'\n"
        % (found_version, sys.executable, ZCBOR_VERSION, sys.executable, ZCBOR_REQUIREMENT)
    )
    env.Exit(1)  # noqa: F821

os.environ["BB_ZCBOR_DIR"] = root
env["ENV"]["BB_ZCBOR_DIR"] = root  # noqa: F821

if "espidf" not in env.get("PIOFRAMEWORK", []):  # noqa: F821
    env.Append(CPPPATH=[os.path.join(root, "include")], CPPDEFINES=["ZCBOR_CANONICAL"])  # noqa: F821
    env.BuildSources(  # noqa: F821
        os.path.join("$BUILD_DIR", "zcbor"),
        os.path.join(root, "src"),
        src_filter=["-<*>"] + ["+<%s>" % name for name in ZCBOR_SOURCES],
    )
