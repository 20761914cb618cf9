"""PlatformIO extra script (esp32dev, esp32s3): build port nimble as an ESP-IDF project.

PlatformIO's ESP-IDF builder compiles the CMake component found in the project's src dir. The
top-level src_dir is ``firmware`` (shared with the Arduino-based envs), so for these envs it is
pointed at firmware/ports/nimble/main, whose CMakeLists.txt lists the core, the port and zcbor.
NimBLE is configured by firmware/ports/nimble/sdkconfig.defaults followed by
sdkconfig.<mcu>.defaults, passed to ESP-IDF as SDKCONFIG_DEFAULTS; BB_BOARD (the env name) is the
board kind the handshake reports.
"""

import os

Import("env")  # noqa: F821  (provided by PlatformIO's SCons)

project_dir = env.subst("$PROJECT_DIR")  # noqa: F821
port_dir = os.path.join(project_dir, "firmware", "ports", "nimble")
env.Replace(PROJECT_SRC_DIR=os.path.join(port_dir, "main"))  # noqa: F821

board = env.BoardConfig()  # noqa: F821
mcu = board.get("build.mcu", "esp32")
defaults = [os.path.join(port_dir, "sdkconfig.defaults")]
mcu_defaults = os.path.join(port_dir, "sdkconfig.%s.defaults" % mcu)
if os.path.isfile(mcu_defaults):
    defaults.append(mcu_defaults)

extra = board.get("build.cmake_extra_args", "")
extra += ' -DSDKCONFIG_DEFAULTS="%s" -DBB_BOARD=%s' % (";".join(defaults), env.subst("$PIOENV"))  # noqa: F821
board.update("build.cmake_extra_args", extra.strip())
