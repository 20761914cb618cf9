# nrf_sd port: header check without PlatformIO or hardware.
#
#   make -f firmware/ports/nrf_sd/port.mk firmware-check-nrf_sd \
#        NRF_HEADERS=/path/to/Adafruit_nRF52_Arduino CMSIS_HEADERS=/path/to/CMSIS/Core/Include
#
# Compiles every port source with arm-none-eabi-gcc -Os -Wall -Wextra -Werror (code generated and
# discarded, so the warnings that need optimisation passes, e.g. -Wmaybe-uninitialized, run) against
# the SoftDevice S140 6.1.1 headers, the nrfx/MDK headers and the CC310 headers of an
# Adafruit_nRF52_Arduino checkout (with its libraries/ submodules: Adafruit_nRFCrypto,
# Adafruit_TinyUSB_Arduino). CMSIS Core headers come separately (PlatformIO's framework-cmsis or
# ARM-software/CMSIS_5 CMSIS/Core/Include). The C++ Arduino glue is checked too when the
# checkout has its variants/ and TinyUSB; set NRF_SD_CHECK_GLUE=0 to skip it.
# Included by the top-level Makefile, or run on its own as above.

NRF_SD_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
NRF_SD_CORE := $(NRF_SD_DIR)/../../core

NRF_HEADERS ?=
CMSIS_HEADERS ?= $(NRF_HEADERS)/../CMSIS/Core/Include
NRF_SD_CC ?= arm-none-eabi-gcc
NRF_SD_CXX ?= arm-none-eabi-g++
NRF_SD_CHECK_GLUE ?= 1
NRF_SD_VARIANT ?= feather_nrf52840_express
NRF_SD_API ?= s140_nrf52_6.1.1_API

NRF_SD_NORDIC := $(NRF_HEADERS)/cores/nRF5/nordic
NRF_SD_ARCH := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
NRF_SD_DEFS := -DNRF52840_XXAA -DSOFTDEVICE_PRESENT -DS140 -DNRF52_SERIES \
	-DARDUINO_NRF52_ADAFRUIT -DUSE_TINYUSB -DUSBCON -DF_CPU=64000000 -DARDUINO=10819 \
	-DARDUINO_NRF52840_FEATHER -DARDUINO_ARCH_NRF52 -DCFG_DEBUG=0 -DCFG_LOGGER=0 -DCFG_SYSVIEW=0 \
	-D'BB_BOARD="feather_nrf52840"'
NRF_SD_INC = -I$(NRF_SD_DIR) -I$(NRF_SD_CORE) $(NRF_SD_VENDOR_INC)
# Vendor headers as system headers: their own warnings (e.g. unused parameters of the SVCALL
# stubs) are not ours to fix; the port's files stay under -Werror.
NRF_SD_VENDOR_INC := \
	-isystem $(CMSIS_HEADERS) \
	-isystem $(NRF_SD_NORDIC) -isystem $(NRF_SD_NORDIC)/nrfx -isystem $(NRF_SD_NORDIC)/nrfx/hal \
	-isystem $(NRF_SD_NORDIC)/nrfx/mdk -isystem $(NRF_SD_NORDIC)/nrfx/soc -isystem $(NRF_SD_NORDIC)/nrfx/drivers/include \
	-isystem $(NRF_SD_NORDIC)/softdevice/$(NRF_SD_API)/include \
	-isystem $(NRF_SD_NORDIC)/softdevice/$(NRF_SD_API)/include/nrf52 \
	-isystem $(NRF_HEADERS)/libraries/Adafruit_nRFCrypto/src
NRF_SD_GLUE_INC := -isystem $(NRF_HEADERS)/cores/nRF5 -isystem $(NRF_HEADERS)/variants/$(NRF_SD_VARIANT) \
	-isystem $(NRF_HEADERS)/cores/nRF5/freertos/Source/include -isystem $(NRF_HEADERS)/cores/nRF5/freertos/config \
	-isystem $(NRF_HEADERS)/cores/nRF5/freertos/portable/GCC/nrf52 \
	-isystem $(NRF_HEADERS)/cores/nRF5/freertos/portable/CMSIS/nrf52 \
	-isystem $(NRF_HEADERS)/cores/nRF5/sysview/SEGGER -isystem $(NRF_HEADERS)/cores/nRF5/sysview/Config \
	-isystem $(NRF_HEADERS)/libraries/Adafruit_TinyUSB_Arduino/src \
	-isystem $(NRF_HEADERS)/libraries/Adafruit_TinyUSB_Arduino/src/arduino
NRF_SD_WARN := -Wall -Wextra -Werror
NRF_SD_C_SRCS := $(wildcard $(NRF_SD_DIR)/*.c)
NRF_SD_CXX_SRCS := $(wildcard $(NRF_SD_DIR)/*.cpp)

.PHONY: firmware-check-nrf_sd
firmware-check-nrf_sd:
ifeq ($(strip $(NRF_HEADERS)),)
	@echo "firmware-check-nrf_sd: skipped: NRF_HEADERS is not set (an Adafruit_nRF52_Arduino checkout with its library submodules; CMSIS_HEADERS=<dir with core_cm4.h>)"
else
	@test -f "$(NRF_SD_NORDIC)/softdevice/$(NRF_SD_API)/include/ble_gap.h" || { echo "firmware-check-nrf_sd: no SoftDevice headers under $(NRF_HEADERS)"; exit 2; }
	@test -f "$(CMSIS_HEADERS)/core_cm4.h" || { echo "firmware-check-nrf_sd: set CMSIS_HEADERS=<dir with core_cm4.h>"; exit 2; }
	@command -v $(NRF_SD_CC) >/dev/null || { echo "firmware-check-nrf_sd: $(NRF_SD_CC) not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"; exit 2; }
	@for f in $(NRF_SD_C_SRCS); do \
		echo "  CHECK $$f"; \
		$(NRF_SD_CC) -std=c11 -Os -c -o /dev/null $(NRF_SD_WARN) $(NRF_SD_ARCH) $(NRF_SD_DEFS) $(NRF_SD_INC) $$f || exit 1; \
	done
	@if [ "$(NRF_SD_CHECK_GLUE)" = 1 ]; then for f in $(NRF_SD_CXX_SRCS); do \
		echo "  CHECK $$f (Arduino core, TinyUSB)"; \
		$(NRF_SD_CXX) -std=gnu++11 -fsyntax-only $(NRF_SD_WARN) -fno-rtti -fno-exceptions $(NRF_SD_ARCH) \
			$(NRF_SD_DEFS) $(NRF_SD_INC) $(NRF_SD_GLUE_INC) $$f || exit 1; \
	done; fi
	@echo "firmware-check-nrf_sd: OK"
endif
