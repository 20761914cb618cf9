# Port `nimble` built natively as a simulated board: the real NimBLE host (apache/mynewt-nimble)
# running bb_port_nimble.c, with the Linux glue linux/bb_nimble_linux.c, on a controller the
# simulated air serves over H4/TCP (firmware/ports/nimble/README.md, "Native simulated board").
#
#   make nimble-sim NIMBLE=<mynewt-nimble checkout>                              (from the top)
#   make -C firmware -f ports/nimble/linux.mk nimble-sim NIMBLE=<dir> PYTHON=<venv python>
#
# Needs build/core/libbbcore.a (`make firmware`), gcc, g++ (NimBLE's Linux NPL has one C++
# file) and Debian's libmbedtls-dev (LE Secure Connections). NimBLE is compiled from the
# checkout with its own warning level; our files with -Wall -Wextra -Werror and NimBLE's
# headers as system headers. Output: build/nimble-sim/bb_nimble_sim.

NIMBLE_LX_PORT_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
NIMBLE_LX_FW_DIR := $(abspath $(NIMBLE_LX_PORT_DIR)/../..)
BUILD ?= $(abspath $(NIMBLE_LX_FW_DIR)/../build)
PYTHON ?= python3
CC ?= gcc
CXX ?= g++
NIMBLE ?=

ifeq ($(ZCBOR_DIR),)
ZCBOR_DIR := $(shell $(PYTHON) -c "import importlib.util as u; s = u.find_spec('zcbor'); print(s.submodule_search_locations[0] if s else '')" 2>/dev/null)
endif

NIMBLE_LX_OUT := $(BUILD)/nimble-sim
NIMBLE_LX_BIN := $(NIMBLE_LX_OUT)/bb_nimble_sim
NIMBLE_LX_CORE_LIB := $(BUILD)/core/libbbcore.a
N := $(abspath $(NIMBLE))

# NimBLE sources: what porting/examples/linux builds (host, services gap/gatt, transport,
# porting layer, Linux NPL, socket transport) minus the controller-side timers.
NIMBLE_LX_IGNORE := $(N)/porting/nimble/src/hal_timer.c $(N)/porting/nimble/src/os_cputime.c \
                    $(N)/porting/nimble/src/os_cputime_pwr2.c
NIMBLE_LX_VENDOR_C := $(filter-out $(NIMBLE_LX_IGNORE), \
    $(wildcard $(N)/porting/nimble/src/*.c) \
    $(wildcard $(N)/nimble/src/*.c) \
    $(wildcard $(N)/nimble/host/src/*.c) \
    $(wildcard $(N)/nimble/host/util/src/*.c) \
    $(wildcard $(N)/nimble/host/services/gap/src/*.c) \
    $(wildcard $(N)/nimble/host/services/gatt/src/*.c) \
    $(wildcard $(N)/nimble/transport/src/*.c) \
    $(wildcard $(N)/porting/npl/linux/src/*.c) \
    $(wildcard $(N)/nimble/transport/socket/src/*.c))
NIMBLE_LX_VENDOR_CC := $(wildcard $(N)/porting/npl/linux/src/*.cc)

# Our syscfg first: it includes the Linux example's with #include_next.
NIMBLE_LX_INC_DIRS := $(NIMBLE_LX_PORT_DIR)/linux/include \
    $(N)/porting/examples/linux/include $(N)/porting/npl/linux/include \
    $(N)/nimble/transport/socket/include $(N)/nimble/include $(N)/nimble/host/include \
    $(N)/nimble/host/services/gap/include $(N)/nimble/host/services/gatt/include \
    $(N)/nimble/host/util/include $(N)/nimble/transport/include $(N)/porting/nimble/include
NIMBLE_LX_VENDOR_FLAGS := -O2 -g -D_GNU_SOURCE -w $(addprefix -I,$(NIMBLE_LX_INC_DIRS))
NIMBLE_LX_OUR_FLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -DZCBOR_CANONICAL -DBB_BOARD='"nimble-sim"' \
    -I$(NIMBLE_LX_FW_DIR)/core -I$(ZCBOR_DIR)/include -I$(NIMBLE_LX_PORT_DIR) \
    -I$(NIMBLE_LX_PORT_DIR)/linux/include $(addprefix -isystem ,$(NIMBLE_LX_INC_DIRS))

NIMBLE_LX_VENDOR_OBJS := $(patsubst $(N)/%.c,$(NIMBLE_LX_OUT)/nimble/%.o,$(NIMBLE_LX_VENDOR_C)) \
                         $(patsubst $(N)/%.cc,$(NIMBLE_LX_OUT)/nimble/%.o,$(NIMBLE_LX_VENDOR_CC))
NIMBLE_LX_OUR_OBJS := $(NIMBLE_LX_OUT)/bb_port_nimble.o $(NIMBLE_LX_OUT)/bb_nimble_linux.o \
                      $(NIMBLE_LX_OUT)/bb_mbedtls_compat.o

.PHONY: nimble-sim nimble-sim-check-tree

nimble-sim-check-tree:
	@test -n "$(NIMBLE)" || { echo "usage: make nimble-sim NIMBLE=<apache/mynewt-nimble checkout>"; exit 2; }
	@test -f $(N)/nimble/host/include/host/ble_hs.h -a -d $(N)/porting/npl/linux/src -a -f $(N)/nimble/transport/socket/src/ble_hci_socket.c || { \
	    echo "nimble-sim: $(NIMBLE) is not an apache/mynewt-nimble tree (needs nimble/host, porting/npl/linux, nimble/transport/socket)"; exit 2; }
	@test -f /usr/include/mbedtls/ecdh.h || { echo "nimble-sim: mbedTLS headers missing: apt-get install libmbedtls-dev"; exit 2; }
	@test -f $(NIMBLE_LX_CORE_LIB) || { echo "nimble-sim: $(NIMBLE_LX_CORE_LIB) missing: run make firmware first"; exit 2; }
	@test -n "$(ZCBOR_DIR)" || { echo "nimble-sim: zcbor not found for PYTHON=$(PYTHON)"; exit 2; }

nimble-sim: nimble-sim-check-tree
	@$(MAKE) --no-print-directory -f $(lastword $(MAKEFILE_LIST)) $(NIMBLE_LX_BIN) NIMBLE=$(NIMBLE) PYTHON=$(PYTHON) ZCBOR_DIR=$(ZCBOR_DIR)
	@echo "nimble-sim: $(NIMBLE_LX_BIN)"

$(NIMBLE_LX_BIN): $(NIMBLE_LX_OUR_OBJS) $(NIMBLE_LX_VENDOR_OBJS) $(NIMBLE_LX_CORE_LIB)
	$(CXX) -o $@ $(NIMBLE_LX_OUR_OBJS) $(NIMBLE_LX_VENDOR_OBJS) $(NIMBLE_LX_CORE_LIB) \
	    -lmbedtls -lmbedcrypto -lpthread -lrt

$(NIMBLE_LX_OUT)/nimble/%.o: $(N)/%.c $(NIMBLE_LX_PORT_DIR)/linux/include/syscfg/syscfg.h
	@mkdir -p $(dir $@)
	@echo "  CC (nimble) $*.c"
	@$(CC) $(NIMBLE_LX_VENDOR_FLAGS) -c $< -o $@

$(NIMBLE_LX_OUT)/nimble/%.o: $(N)/%.cc $(NIMBLE_LX_PORT_DIR)/linux/include/syscfg/syscfg.h
	@mkdir -p $(dir $@)
	@echo "  CXX (nimble) $*.cc"
	@$(CXX) $(NIMBLE_LX_VENDOR_FLAGS) -c $< -o $@

$(NIMBLE_LX_OUT)/bb_port_nimble.o: $(NIMBLE_LX_PORT_DIR)/bb_port_nimble.c $(NIMBLE_LX_PORT_DIR)/bb_nimble_glue.h \
        $(NIMBLE_LX_PORT_DIR)/linux/include/syscfg/syscfg.h $(wildcard $(NIMBLE_LX_FW_DIR)/core/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(NIMBLE_LX_OUR_FLAGS) -c $< -o $@

$(NIMBLE_LX_OUT)/%.o: $(NIMBLE_LX_PORT_DIR)/linux/%.c $(NIMBLE_LX_PORT_DIR)/bb_nimble_glue.h \
        $(NIMBLE_LX_PORT_DIR)/linux/include/syscfg/syscfg.h $(wildcard $(NIMBLE_LX_FW_DIR)/core/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(NIMBLE_LX_OUR_FLAGS) -c $< -o $@
