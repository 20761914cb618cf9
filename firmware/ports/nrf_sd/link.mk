# nrf_sd port: full link for the nRF52840 boards, without PlatformIO and without a board.
#
#   make firmware-link-nrf NRF_CORE=<Adafruit_nRF52_Arduino checkout> CMSIS=<CMSIS_5 checkout>
#   make -C firmware -f ports/nrf_sd/link.mk firmware-link-nrf PYTHON=... NRF_CORE=... CMSIS=...
#
# Builds, for each board of NRF_LINK_BOARDS, what the Arduino IDE / PlatformIO build would:
# the Adafruit core (cores/nRF5 with FreeRTOS, nrfx, SEGGER SysView, startup code) as an
# archive, the board's variant, the Adafruit TinyUSB library, our core, the nrf_sd port
# (C and the C++ glue) and zcbor; then links them with arm-none-eabi-gcc against the core's
# S140 6.1.1 linker script (cores/nRF5/linker/nrf52840_s140_v6.ld) and Adafruit_nRFCrypto's
# CC310 runtime with --unresolved-symbols=report-all, so that any symbol nobody defines fails
# the link. Prints flash and RAM use against the linker script's regions.
#
# NRF_CORE must have its libraries/ submodules (Adafruit_TinyUSB_Arduino, Adafruit_nRFCrypto)
# checked out. CMSIS is a CMSIS_5 checkout (CMSIS/Core/Include is used) or that directory
# itself. Nothing of either is copied into the repository: objects go to build/nrf-link/<board>/.
# Flags follow the core's platform.txt (1.7.0) except the optimisation: -Os everywhere
# (PlatformIO's default; platform.txt uses -Ofast). Vendor code is compiled with its own
# warning level (platform.txt: -Werror=return-type only); ours with -Wall -Wextra -Werror and
# vendor headers as system headers, as in port.mk.

NRF_LINK_PORT_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
NRF_LINK_FW_DIR := $(abspath $(NRF_LINK_PORT_DIR)/../..)
BUILD ?= $(abspath $(NRF_LINK_FW_DIR)/../build)
PYTHON ?= python3

NRF_CORE ?=
CMSIS ?=
# CMSIS may be the CMSIS_5 checkout or its CMSIS/Core/Include directory.
NRF_LINK_CMSIS_INC = $(if $(wildcard $(CMSIS)/CMSIS/Core/Include/core_cm4.h),$(CMSIS)/CMSIS/Core/Include,$(CMSIS))

ifeq ($(ZCBOR_DIR),)
ZCBOR_DIR := $(shell $(PYTHON) -c "import importlib.util as u; s = u.find_spec('zcbor'); print(s.submodule_search_locations[0] if s else '')" 2>/dev/null)
endif

NRF_LINK_CC := arm-none-eabi-gcc
NRF_LINK_CXX := arm-none-eabi-g++
NRF_LINK_AR := arm-none-eabi-ar
NRF_LINK_SIZE := arm-none-eabi-size
NRF_LINK_NM := arm-none-eabi-nm
NRF_LINK_DIR := $(BUILD)/nrf-link

# Boards: <name>:<variant>:<board define>:<USB PID>:<USB product>. The VID is Adafruit's
# (0x239A) for both, as the core's boards.txt and our boards/*.json have it. The dongle uses the
# PCA10056 variant (the core has no PCA10059 one; see README.md).
NRF_LINK_BOARDS := feather_nrf52840 nrf52840_dongle
NRF_LINK_VARIANT_feather_nrf52840 := feather_nrf52840_express
NRF_LINK_BOARDDEF_feather_nrf52840 := ARDUINO_NRF52840_FEATHER
NRF_LINK_PID_feather_nrf52840 := 0x8029
NRF_LINK_PRODUCT_feather_nrf52840 := Feather nRF52840 Express
NRF_LINK_VARIANT_nrf52840_dongle := pca10056
NRF_LINK_BOARDDEF_nrf52840_dongle := ARDUINO_NRF52840_PCA10056
NRF_LINK_PID_nrf52840_dongle := 0x8029
NRF_LINK_PRODUCT_nrf52840_dongle := nRF52840 Dongle

# The SoftDevice and its linker script (applications from 0x26000, RAM from 0x20006000).
NRF_LINK_SD_API := s140_nrf52_6.1.1_API
NRF_LINK_LDSCRIPT := nrf52840_s140_v6.ld
# The CryptoCell CC310 runtime (LE Secure Connections, nrf_sd_lesc.c), precompiled.
NRF_LINK_CC310_DIR = $(NRF_CORE)/libraries/Adafruit_nRFCrypto/src/cortex-m4/fpv4-sp-d16-hard
NRF_LINK_CC310_LIB := nrf_cc310_0.9.13-no-interrupts

NRF_LINK_ARCH := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
NRF_LINK_OPT := -Os -g -ffunction-sections -fdata-sections -nostdlib --param max-inline-insns-single=500
NRF_LINK_VENDOR_WARN := -Werror=return-type
NRF_LINK_OUR_WARN := -Wall -Wextra -Werror

# Vendor source directories, relative to NRF_CORE: every .c/.cpp/.S below them is compiled
# (the Arduino builder compiles a core and a library recursively).
NRF_LINK_CORE_SRC_DIR := cores/nRF5
NRF_LINK_TINYUSB_SRC_DIR := libraries/Adafruit_TinyUSB_Arduino/src
# TinyUSB's host classes include <SPI.h> (MAX3421E): the Arduino builder then adds the core's
# SPI library, as here.
NRF_LINK_SPI_SRC_DIR := libraries/SPI
NRF_LINK_FIND = $(shell cd $(NRF_CORE) && find $(1) -type f \( -name '*.c' -o -name '*.cpp' -o -name '*.S' \) | LC_ALL=C sort)

# Include directories of the core (platform.txt build.flags.nrf, core and variant paths).
NRF_LINK_NORDIC = $(NRF_CORE)/cores/nRF5/nordic
NRF_LINK_RTOS = $(NRF_CORE)/cores/nRF5/freertos
NRF_LINK_VENDOR_DIRS = $(NRF_LINK_CMSIS_INC) $(NRF_LINK_NORDIC) $(NRF_LINK_NORDIC)/nrfx \
	$(NRF_LINK_NORDIC)/nrfx/hal $(NRF_LINK_NORDIC)/nrfx/mdk $(NRF_LINK_NORDIC)/nrfx/soc \
	$(NRF_LINK_NORDIC)/nrfx/drivers/include $(NRF_LINK_NORDIC)/nrfx/drivers/src \
	$(NRF_LINK_NORDIC)/softdevice/$(NRF_LINK_SD_API)/include \
	$(NRF_LINK_NORDIC)/softdevice/$(NRF_LINK_SD_API)/include/nrf52 \
	$(NRF_LINK_RTOS)/Source/include $(NRF_LINK_RTOS)/config $(NRF_LINK_RTOS)/portable/GCC/nrf52 \
	$(NRF_LINK_RTOS)/portable/CMSIS/nrf52 $(NRF_CORE)/cores/nRF5/sysview/SEGGER \
	$(NRF_CORE)/cores/nRF5/sysview/Config $(NRF_CORE)/libraries/Adafruit_TinyUSB_Arduino/src/arduino \
	$(NRF_CORE)/cores/nRF5 $(NRF_CORE)/libraries/Adafruit_TinyUSB_Arduino/src \
	$(NRF_CORE)/libraries/Adafruit_nRFCrypto/src $(NRF_CORE)/libraries/SPI

# Defines of one board ($(1)): platform.txt's recipe flags with boards.txt's values.
NRF_LINK_DEFS = -DF_CPU=64000000 -DARDUINO=10819 -D$(NRF_LINK_BOARDDEF_$(1)) -DARDUINO_ARCH_NRF52 \
	'-DARDUINO_BSP_VERSION="1.7.0"' -DNRF52840_XXAA -DS140 \
	-DUSBCON -DUSE_TINYUSB -DUSB_VID=0x239A -DUSB_PID=$(NRF_LINK_PID_$(1)) \
	'-DUSB_MANUFACTURER="Adafruit"' '-DUSB_PRODUCT="$(NRF_LINK_PRODUCT_$(1))"' \
	-DSOFTDEVICE_PRESENT -DARDUINO_NRF52_ADAFRUIT -DNRF52_SERIES -DDX_CC_TEE -DLFS_NAME_MAX=64 \
	-DCFG_DEBUG=0 -DCFG_LOGGER=0 -DCFG_SYSVIEW=0 '-DBB_BOARD="$(1)"'

NRF_LINK_CFLAGS = $(NRF_LINK_ARCH) $(NRF_LINK_OPT) -std=gnu11
NRF_LINK_CXXFLAGS = $(NRF_LINK_ARCH) $(NRF_LINK_OPT) -std=gnu++11 -fno-threadsafe-statics -fno-rtti -fno-exceptions
NRF_LINK_SFLAGS = $(NRF_LINK_ARCH) -mabi=aapcs -Os -g -x assembler-with-cpp
# platform.txt compiler.ldflags (+ float printf, as build.float_flags).
NRF_LINK_LDFLAGS = $(NRF_LINK_ARCH) -Os -u _printf_float -Wl,--gc-sections -Wl,--cref \
	-Wl,--check-sections -Wl,--unresolved-symbols=report-all -Wl,--warn-common \
	-Wl,--warn-section-align -Wl,--wrap=malloc -Wl,--wrap=free -Wl,--wrap=realloc \
	-Wl,--wrap=calloc --specs=nano.specs --specs=nosys.specs

# Ours: core, port, zcbor.
NRF_LINK_OUR_CORE_SRCS := $(wildcard $(NRF_LINK_FW_DIR)/core/*.c)
NRF_LINK_PORT_C_SRCS := $(wildcard $(NRF_LINK_PORT_DIR)/*.c)
NRF_LINK_PORT_CXX_SRCS := $(wildcard $(NRF_LINK_PORT_DIR)/*.cpp)
NRF_LINK_OUR_HDRS := $(wildcard $(NRF_LINK_FW_DIR)/core/*.h) $(wildcard $(NRF_LINK_PORT_DIR)/*.h)
NRF_LINK_ZCBOR_SRCS := zcbor_common.c zcbor_decode.c zcbor_encode.c

.PHONY: firmware-link-nrf nrf-link-preflight

nrf-link-preflight:
	@test -n "$(NRF_CORE)" || { echo "firmware-link-nrf: set NRF_CORE=<Adafruit_nRF52_Arduino checkout, with its libraries/ submodules>"; exit 2; }
	@test -f "$(NRF_CORE)/cores/nRF5/linker/$(NRF_LINK_LDSCRIPT)" || { echo "firmware-link-nrf: $(NRF_CORE) is not an Adafruit_nRF52_Arduino checkout (no cores/nRF5/linker/$(NRF_LINK_LDSCRIPT))"; exit 2; }
	@test -f "$(NRF_CORE)/$(NRF_LINK_TINYUSB_SRC_DIR)/tusb.h" || { echo "firmware-link-nrf: $(NRF_CORE)/libraries/Adafruit_TinyUSB_Arduino is empty (git submodule update --init)"; exit 2; }
	@test -f "$(NRF_LINK_CC310_DIR)/lib$(NRF_LINK_CC310_LIB).a" || { echo "firmware-link-nrf: $(NRF_LINK_CC310_DIR)/lib$(NRF_LINK_CC310_LIB).a missing (libraries/Adafruit_nRFCrypto submodule)"; exit 2; }
	@test -f "$(NRF_LINK_CMSIS_INC)/core_cm4.h" || { echo "firmware-link-nrf: set CMSIS=<CMSIS_5 checkout> (no core_cm4.h under $(CMSIS) or $(CMSIS)/CMSIS/Core/Include)"; exit 2; }
	@test -n "$(ZCBOR_DIR)" || { echo "firmware-link-nrf: zcbor not found for PYTHON=$(PYTHON)"; exit 2; }
	@command -v $(NRF_LINK_CC) >/dev/null || { echo "firmware-link-nrf: $(NRF_LINK_CC) not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"; exit 2; }

# One board: $(1) = board name. Objects under build/nrf-link/$(1)/{vendor,ours}/.
define NRF_LINK_BOARD
NRF_LINK_B_$(1) := $(NRF_LINK_DIR)/$(1)
NRF_LINK_VINC_$(1) := $$(addprefix -I,$(NRF_LINK_VENDOR_DIRS) $(NRF_CORE)/variants/$(NRF_LINK_VARIANT_$(1)))
NRF_LINK_SINC_$(1) := -I$(NRF_LINK_PORT_DIR) -I$(NRF_LINK_FW_DIR)/core -I$(ZCBOR_DIR)/include \
	$$(addprefix -isystem ,$(NRF_LINK_VENDOR_DIRS) $(NRF_CORE)/variants/$(NRF_LINK_VARIANT_$(1)))
NRF_LINK_CORE_OBJS_$(1) := $$(addprefix $$(NRF_LINK_B_$(1))/vendor/,$$(addsuffix .o,$$(call NRF_LINK_FIND,$(NRF_LINK_CORE_SRC_DIR))))
NRF_LINK_LIB_OBJS_$(1) := $$(addprefix $$(NRF_LINK_B_$(1))/vendor/,$$(addsuffix .o,$$(call NRF_LINK_FIND,variants/$(NRF_LINK_VARIANT_$(1)) $(NRF_LINK_TINYUSB_SRC_DIR) $(NRF_LINK_SPI_SRC_DIR))))
NRF_LINK_OUR_OBJS_$(1) := \
	$$(patsubst $(NRF_LINK_FW_DIR)/%,$$(NRF_LINK_B_$(1))/ours/%.o,$(NRF_LINK_OUR_CORE_SRCS) $(NRF_LINK_PORT_C_SRCS) $(NRF_LINK_PORT_CXX_SRCS)) \
	$$(addprefix $$(NRF_LINK_B_$(1))/ours/zcbor/,$$(addsuffix .o,$(NRF_LINK_ZCBOR_SRCS)))

$$(NRF_LINK_B_$(1))/vendor/%.c.o: $(NRF_CORE)/%.c | nrf-link-preflight
	@mkdir -p $$(dir $$@)
	@echo "  CC   [$(1)] $$*.c"
	@$(NRF_LINK_CC) $(NRF_LINK_CFLAGS) $(NRF_LINK_VENDOR_WARN) $(call NRF_LINK_DEFS,$(1)) $$(NRF_LINK_VINC_$(1)) -c $$< -o $$@
$$(NRF_LINK_B_$(1))/vendor/%.cpp.o: $(NRF_CORE)/%.cpp | nrf-link-preflight
	@mkdir -p $$(dir $$@)
	@echo "  CXX  [$(1)] $$*.cpp"
	@$(NRF_LINK_CXX) $(NRF_LINK_CXXFLAGS) $(NRF_LINK_VENDOR_WARN) $(call NRF_LINK_DEFS,$(1)) $$(NRF_LINK_VINC_$(1)) -c $$< -o $$@
$$(NRF_LINK_B_$(1))/vendor/%.S.o: $(NRF_CORE)/%.S | nrf-link-preflight
	@mkdir -p $$(dir $$@)
	@echo "  AS   [$(1)] $$*.S"
	@$(NRF_LINK_CC) $(NRF_LINK_SFLAGS) $(call NRF_LINK_DEFS,$(1)) $$(NRF_LINK_VINC_$(1)) -c $$< -o $$@

$$(NRF_LINK_B_$(1))/ours/core/%.c.o: $(NRF_LINK_FW_DIR)/core/%.c $(NRF_LINK_OUR_HDRS) | nrf-link-preflight
	@mkdir -p $$(dir $$@)
	@echo "  CC   [$(1)] core/$$*.c"
	@$(NRF_LINK_CC) $(NRF_LINK_ARCH) $(NRF_LINK_OPT) -std=c11 $(NRF_LINK_OUR_WARN) -DZCBOR_CANONICAL $(call NRF_LINK_DEFS,$(1)) $$(NRF_LINK_SINC_$(1)) -c $$< -o $$@
$$(NRF_LINK_B_$(1))/ours/ports/nrf_sd/%.c.o: $(NRF_LINK_PORT_DIR)/%.c $(NRF_LINK_OUR_HDRS) | nrf-link-preflight
	@mkdir -p $$(dir $$@)
	@echo "  CC   [$(1)] ports/nrf_sd/$$*.c"
	@$(NRF_LINK_CC) $(NRF_LINK_ARCH) $(NRF_LINK_OPT) -std=c11 $(NRF_LINK_OUR_WARN) -DZCBOR_CANONICAL $(call NRF_LINK_DEFS,$(1)) $$(NRF_LINK_SINC_$(1)) -c $$< -o $$@
$$(NRF_LINK_B_$(1))/ours/ports/nrf_sd/%.cpp.o: $(NRF_LINK_PORT_DIR)/%.cpp $(NRF_LINK_OUR_HDRS) | nrf-link-preflight
	@mkdir -p $$(dir $$@)
	@echo "  CXX  [$(1)] ports/nrf_sd/$$*.cpp"
	@$(NRF_LINK_CXX) $(NRF_LINK_CXXFLAGS) $(NRF_LINK_OUR_WARN) -DZCBOR_CANONICAL $(call NRF_LINK_DEFS,$(1)) $$(NRF_LINK_SINC_$(1)) -c $$< -o $$@
$$(NRF_LINK_B_$(1))/ours/zcbor/%.c.o: $(ZCBOR_DIR)/src/%.c | nrf-link-preflight
	@mkdir -p $$(dir $$@)
	@echo "  CC   [$(1)] zcbor/$$*.c"
	@$(NRF_LINK_CC) $(NRF_LINK_ARCH) $(NRF_LINK_OPT) -std=c11 -Wall -Wextra -Wno-unused-but-set-variable -fno-strict-aliasing -DZCBOR_CANONICAL -I$(ZCBOR_DIR)/include -c $$< -o $$@

# The core goes into an archive, as the Arduino builder does, so only what is referenced links.
$$(NRF_LINK_B_$(1))/core.a: $$(NRF_LINK_CORE_OBJS_$(1))
	@rm -f $$@
	@$(NRF_LINK_AR) rcs $$@ $$^

$$(NRF_LINK_B_$(1))/blebridge.elf: $$(NRF_LINK_OUR_OBJS_$(1)) $$(NRF_LINK_LIB_OBJS_$(1)) $$(NRF_LINK_B_$(1))/core.a
	@echo "  LINK [$(1)] $$@"
	@$(NRF_LINK_CC) $(NRF_LINK_LDFLAGS) -L$(NRF_CORE)/cores/nRF5/linker -T$(NRF_LINK_LDSCRIPT) \
	    -Wl,-Map,$$(NRF_LINK_B_$(1))/blebridge.map -o $$@ \
	    $$(NRF_LINK_OUR_OBJS_$(1)) $$(NRF_LINK_LIB_OBJS_$(1)) \
	    -Wl,--start-group -lm $$(NRF_LINK_B_$(1))/core.a -L$(NRF_LINK_CC310_DIR) -l$(NRF_LINK_CC310_LIB) -Wl,--end-group

.PHONY: nrf-link-size-$(1)
nrf-link-size-$(1): $$(NRF_LINK_B_$(1))/blebridge.elf
	@{ echo "== $(1) (variant $(NRF_LINK_VARIANT_$(1)), $(NRF_LINK_LDSCRIPT), $$<)"; \
	   $(NRF_LINK_SIZE) $$<; \
	   $(NRF_LINK_NM) -t d $$< | awk '{ a[$$$$3] = $$$$1 + 0 } END { \
	    flash = a["__etext"] - a["__flash_arduino_start"] + a["__data_end__"] - a["__data_start__"]; \
	    flash_max = a["__flash_arduino_end"] - a["__flash_arduino_start"]; \
	    statics = a["__bss_end__"] - a["__data_start__"]; heap = a["__HeapLimit"] - a["__HeapBase"]; \
	    printf "$(1): flash %d of %d bytes (%.1f%%); RAM: statics %d bytes (%.1f KB) from 0x%08X, heap %d bytes, ISR stack %d bytes\n", \
	        flash, flash_max, 100.0 * flash / flash_max, statics, statics / 1024.0, a["__data_start__"], heap, a["__StackTop"] - a["__StackLimit"] }'; }

firmware-link-nrf: nrf-link-size-$(1)
endef

ifneq ($(strip $(NRF_CORE)),)
$(foreach b,$(NRF_LINK_BOARDS),$(eval $(call NRF_LINK_BOARD,$(b))))
else
firmware-link-nrf: nrf-link-preflight
endif
