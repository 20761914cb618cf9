# Port `nimble` (ESP32 / ESP32-S3, ESP-IDF NimBLE): syntax check without ESP-IDF.
#
#   make firmware-check NIMBLE_HEADERS=<apache/mynewt-nimble checkout>        (from the top)
#   make -C firmware -f ports/nimble/port.mk firmware-check-nimble NIMBLE_HEADERS=<dir>
#
# Compiles bb_port_nimble.c (everything this port does with the NimBLE host API) with
# -fsyntax-only -Wall -Wextra -Werror against the NimBLE headers of that checkout, twice: with the
# ESP32 settings (no extended advertising) and the ESP32-S3 ones (CONFIG_BT_NIMBLE_EXT_ADV).
# check/include holds our stand-ins for what an ESP-IDF build would supply (syscfg values from
# sdkconfig.defaults, the FreeRTOS NPL types); they are used for this check only.
# bb_esp32_main.c (FreeRTOS tasks, UART / USB Serial/JTAG, nimble_port_init) needs the ESP-IDF
# headers and is NOT checked here; it is compiled only by `pio run -e esp32dev|esp32s3`.
# The build itself is PlatformIO's (platformio-esp32.ini, main/CMakeLists.txt).

NIMBLE_PORT_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
NIMBLE_FW_DIR := $(abspath $(NIMBLE_PORT_DIR)/../..)
PYTHON ?= python3
CC ?= gcc

ifeq ($(ZCBOR_DIR),)
ZCBOR_DIR := $(shell $(PYTHON) -c "import importlib.util as u; s = u.find_spec('zcbor'); print(s.submodule_search_locations[0] if s else '')" 2>/dev/null)
endif
NIMBLE_CORE_INC := -I$(NIMBLE_FW_DIR)/core -I$(ZCBOR_DIR)/include
NIMBLE_CFLAGS := -std=c11 -Wall -Wextra -Werror -DZCBOR_CANONICAL

NIMBLE_INC = -I$(NIMBLE_PORT_DIR)/check/include \
             -I$(NIMBLE_PORT_DIR) \
             -I$(NIMBLE_HEADERS)/nimble/include \
             -I$(NIMBLE_HEADERS)/nimble/host/include \
             -I$(NIMBLE_HEADERS)/nimble/host/services/gap/include \
             -I$(NIMBLE_HEADERS)/nimble/host/services/gatt/include \
             -I$(NIMBLE_HEADERS)/nimble/transport/include \
             -I$(NIMBLE_HEADERS)/porting/nimble/include

NIMBLE_CHECK_SRCS := $(NIMBLE_PORT_DIR)/bb_port_nimble.c
# Variants: ESP32 (CONFIG_BT_NIMBLE_EXT_ADV off) and ESP32-S3 (on).
NIMBLE_VARIANTS := -DBB_CHECK_EXT_ADV=0 -DBB_CHECK_EXT_ADV=1

.PHONY: firmware-check-nimble

firmware-check-nimble:
ifeq ($(strip $(NIMBLE_HEADERS)),)
	@echo "firmware-check-nimble: skipped: NIMBLE_HEADERS is not set (an apache/mynewt-nimble checkout, e.g. git clone https://github.com/apache/mynewt-nimble)"
else
	@test -f $(NIMBLE_HEADERS)/nimble/host/include/host/ble_hs.h || { \
	    echo "firmware-check-nimble: $(NIMBLE_HEADERS) is not a mynewt-nimble checkout (no nimble/host/include/host/ble_hs.h)"; exit 2; }
	@test -n "$(ZCBOR_DIR)" || { echo "firmware-check-nimble: zcbor not found for PYTHON=$(PYTHON)"; exit 2; }
	@set -e; for v in $(NIMBLE_VARIANTS); do for src in $(NIMBLE_CHECK_SRCS); do \
	    echo "  CHECK $$(basename $$src) $$v against $(NIMBLE_HEADERS)"; \
	    $(CC) $(NIMBLE_CFLAGS) $$v -fsyntax-only $(NIMBLE_CORE_INC) $(NIMBLE_INC) $$src; \
	done; done
	@echo "firmware-check-nimble: ok (bb_port_nimble.c against $(NIMBLE_HEADERS)); not checked: bb_esp32_main.c (needs ESP-IDF)"
endif
