# Port `nimble` (ESP32 / ESP32-S3, ESP-IDF NimBLE): syntax check without ESP-IDF.
#
#   make firmware-check NIMBLE_HEADERS="<tree> [<tree> ...]"                    (from the top)
#   make -C firmware -f ports/nimble/port.mk firmware-check-nimble NIMBLE_HEADERS=<tree>
#
# Each <tree> is a NimBLE source tree: apache/mynewt-nimble, or espressif/esp-nimble (the fork
# ESP-IDF builds, components/bt/host/nimble/nimble; recognised by host/ble_esp_gap.h). For each
# tree bb_port_nimble.c (everything this port does with the NimBLE host API) is compiled to an
# object with -O2 -Wall -Wextra -Werror (flow and unused-function warnings need a real compile)
# twice: with the ESP32 settings (no extended advertising) and the ESP32-S3 ones
# (CONFIG_BT_NIMBLE_EXT_ADV). Then every NimBLE function or variable the object needs
# (ble_*, os_*, nimble_*; not the OS port's ble_npl_*) must be defined in that tree's .c files,
# i.e. would link. NimBLE's headers are -isystem: warnings inside third-party headers are not
# ours to fix.
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
BUILD ?= $(abspath $(NIMBLE_FW_DIR)/../build)
NIMBLE_CHECK_DIR := $(BUILD)/nimble-check

# NimBLE include directories, relative to a tree.
NIMBLE_INC_DIRS := nimble/include nimble/host/include nimble/host/services/gap/include \
                   nimble/host/services/gatt/include nimble/transport/include porting/nimble/include
# A definition at the start of a line: optional return type or storage words, then the name.
NIMBLE_DEF_RE := ^([A-Za-z_][A-Za-z0-9_ *]*[ *])?

NIMBLE_CHECK_SRCS := $(NIMBLE_PORT_DIR)/bb_port_nimble.c
# Variants: ESP32 (CONFIG_BT_NIMBLE_EXT_ADV off) and ESP32-S3 (on).
NIMBLE_VARIANTS := -DBB_CHECK_EXT_ADV=0 -DBB_CHECK_EXT_ADV=1

.PHONY: firmware-check-nimble

firmware-check-nimble:
ifeq ($(strip $(NIMBLE_HEADERS)),)
	@echo "firmware-check-nimble: skipped: NIMBLE_HEADERS is not set (apache/mynewt-nimble and/or espressif/esp-nimble source trees)"
else
	@test -n "$(ZCBOR_DIR)" || { echo "firmware-check-nimble: zcbor not found for PYTHON=$(PYTHON)"; exit 2; }
	@mkdir -p $(NIMBLE_CHECK_DIR)
	@set -e; for t in $(NIMBLE_HEADERS); do \
	    test -f $$t/nimble/host/include/host/ble_hs.h || { \
	        echo "firmware-check-nimble: $$t is not a NimBLE tree (no nimble/host/include/host/ble_hs.h)"; exit 2; }; \
	done
	@set -e; for t in $(NIMBLE_HEADERS); do \
	    if test -f $$t/nimble/host/include/host/ble_esp_gap.h; then \
	        kind=esp-nimble; esp="-I$(NIMBLE_PORT_DIR)/check/include-esp -include esp_err.h"; \
	    else kind=mynewt-nimble; esp=""; fi; \
	    inc=""; for d in $(NIMBLE_INC_DIRS); do inc="$$inc -isystem $$t/$$d"; done; \
	    for v in $(NIMBLE_VARIANTS); do for src in $(NIMBLE_CHECK_SRCS); do \
	        echo "  CHECK $$(basename $$src) $$v against $$kind $$t"; \
	        obj=$(NIMBLE_CHECK_DIR)/$$(basename $$src .c)$$v.o; \
	        $(CC) $(NIMBLE_CFLAGS) -O2 $$v -c -o $$obj $(NIMBLE_CORE_INC) -I$(NIMBLE_PORT_DIR)/check/include \
	            -I$(NIMBLE_PORT_DIR) $$esp $$inc $$src; \
	        for sym in $$(nm -u $$obj | awk '{print $$2}' | grep -E '^(ble_|os_|nimble_)' | grep -v '^ble_npl_'); do \
	            grep -rqE "$(NIMBLE_DEF_RE)$$sym ?[(=;]" --include=*.c $$t/nimble $$t/porting || { \
	                echo "firmware-check-nimble: $$sym (used by $$(basename $$src) $$v) is not defined in $$t"; exit 1; }; \
	        done; \
	    done; done; \
	done
	@echo "firmware-check-nimble: ok (bb_port_nimble.c compiles and its NimBLE symbols exist in $(NIMBLE_HEADERS)); not checked: bb_esp32_main.c (needs ESP-IDF)"
endif
