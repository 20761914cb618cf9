"""PlatformIO extra script (esp32dev, esp32s3): build port nimble as an ESP-IDF project.

PlatformIO's ESP-IDF builder (platform-espressif32 builder/frameworks/espidf.py) runs CMake on
the project directory and takes the project's own component from ``$PROJECT_SRC_DIR``, read when
that builder starts, i.e. after PRE scripts. The top-level src_dir is ``firmware`` (shared with
the Arduino-based envs), so for these envs it is pointed at firmware/ports/nimble/main, whose
CMakeLists.txt lists the core, the port and zcbor. The directory is named ``main`` on purpose: the
builder looks for the CMake target ``__idf_<basename of src dir>`` and refuses a second
``__idf_main``.

NimBLE is configured by firmware/ports/nimble/sdkconfig.defaults followed by
sdkconfig.<mcu>.defaults, passed to ESP-IDF as SDKCONFIG_DEFAULTS through the board's
``build.cmake_extra_args`` (board changes from a PRE script are documented PlatformIO usage).
ESP-IDF applies defaults only to options missing from the generated sdkconfig.<env> (in the
project directory, git-ignored), so that file is deleted when a defaults file is newer than it.
BB_BOARD (the env name) is the board kind the handshake reports.
"""

import os

Import("env")  # noqa: F821  (provided by PlatformIO's SCons)

project_dir = env.subst("$PROJECT_DIR")  # noqa: F821
pioenv = env.subst("$PIOENV")  # noqa: F821
port_dir = os.path.join(project_dir, "firmware", "ports", "nimble")
env.Replace(PROJECT_SRC_DIR=os.path.join(port_dir, "main"))  # noqa: F821

board = env.BoardConfig()  # noqa: F821
mcu = board.get("build.mcu", "esp32")
defaults = [os.path.join(port_dir, "sdkconfig.defaults")]
mcu_defaults = os.path.join(port_dir, "sdkconfig.%s.defaults" % mcu)
if os.path.isfile(mcu_defaults):
    defaults.append(mcu_defaults)

# The sdkconfig the builder generates (same rule as espidf.py's SDKCONFIG_PATH).
sdkconfig = os.path.expandvars(
    board.get("build.esp-idf.sdkconfig_path", os.path.join(project_dir, "sdkconfig.%s" % pioenv))
)
if os.path.isfile(sdkconfig) and any(os.path.getmtime(d) > os.path.getmtime(sdkconfig) for d in defaults):
    print("nimble_idf.py: %s is older than the NimBLE sdkconfig defaults; regenerating it" % sdkconfig)
    os.remove(sdkconfig)

# PlatformIO may run extra scripts more than once per build (IDE integration data): add the
# arguments once.
ours = ['-DSDKCONFIG_DEFAULTS="%s"' % ";".join(defaults), "-DBB_BOARD=%s" % pioenv]
extra = board.get("build.cmake_extra_args", "")
missing = [arg for arg in ours if arg not in extra]
if missing:
    board.update("build.cmake_extra_args", " ".join([extra] + missing).strip())
