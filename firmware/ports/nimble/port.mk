# Port `nimble` (ESP32 / ESP32-S3, ESP-IDF NimBLE): syntax check without ESP-IDF.
#
#   make firmware-check NIMBLE_HEADERS="<tree> [<tree> ...]"                    (from the top)
#   make -C firmware -f ports/nimble/port.mk firmware-check-nimble NIMBLE_HEADERS=<tree>
#
# Each <tree> is a NimBLE source tree: apache/mynewt-nimble, or espressif/esp-nimble (the fork
# ESP-IDF builds, components/bt/host/nimble/nimble; recognised by host/ble_esp_gap.h). For each
# tree bb_port_nimble.c (everything this port does with the NimBLE host API) is compiled with
# -fsyntax-only -Wall -Wextra -Werror twice: with the ESP32 settings (no extended advertising)
# and the ESP32-S3 ones (CONFIG_BT_NIMBLE_EXT_ADV). NimBLE's headers are -isystem: warnings
# inside third-party headers are not ours to fix.
# check/include holds our stand-ins for what an ESP-IDF build would supply (syscfg values from
# sdkconfig.defaults, the FreeRTOS NPL types); check/include-esp the esp_err_t that esp-nimble's
# headers expect from ESP-IDF. They are used for this check only.
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

# NimBLE include directories of tree $(1).
nimble_inc = -isystem $(1)/nimble/include \
             -isystem $(1)/nimble/host/include \
             -isystem $(1)/nimble/host/services/gap/include \
             -isystem $(1)/nimble/host/services/gatt/include \
             -isystem $(1)/nimble/transport/include \
             -isystem $(1)/porting/nimble/include

NIMBLE_CHECK_SRCS := $(NIMBLE_PORT_DIR)/bb_port_nimble.c
# Variants: ESP32 (CONFIG_BT_NIMBLE_EXT_ADV off) and ESP32-S3 (on).
NIMBLE_VARIANTS := -DBB_CHECK_EXT_ADV=0 -DBB_CHECK_EXT_ADV=1

.PHONY: firmware-check-nimble

firmware-check-nimble:
ifeq ($(strip $(NIMBLE_HEADERS)),)
	@echo "firmware-check-nimble: skipped: NIMBLE_HEADERS is not set (apache/mynewt-nimble and/or espressif/esp-nimble source trees)"
else
	@test -n "$(ZCBOR_DIR)" || { echo "firmware-check-nimble: zcbor not found for PYTHON=$(PYTHON)"; exit 2; }
	@set -e; for t in $(NIMBLE_HEADERS); do \
	    test -f $$t/nimble/host/include/host/ble_hs.h || { \
	        echo "firmware-check-nimble: $$t is not a NimBLE tree (no nimble/host/include/host/ble_hs.h)"; exit 2; }; \
	done
	@set -e; $(foreach t,$(NIMBLE_HEADERS), \
	    if test -f $(t)/nimble/host/include/host/ble_esp_gap.h; then \
	        kind=esp-nimble; esp="-I$(NIMBLE_PORT_DIR)/check/include-esp -include esp_err.h"; \
	    else kind=mynewt-nimble; esp=""; fi; \
	    for v in $(NIMBLE_VARIANTS); do for src in $(NIMBLE_CHECK_SRCS); do \
	        echo "  CHECK $$(basename $$src) $$v against $$kind $(t)"; \
	        $(CC) $(NIMBLE_CFLAGS) $$v -fsyntax-only $(NIMBLE_CORE_INC) -I$(NIMBLE_PORT_DIR)/check/include \
	            -I$(NIMBLE_PORT_DIR) $$esp $(call nimble_inc,$(t)) $$src; \
	    done; done;)
	@echo "firmware-check-nimble: ok (bb_port_nimble.c against $(NIMBLE_HEADERS)); not checked: bb_esp32_main.c (needs ESP-IDF)"
endif
