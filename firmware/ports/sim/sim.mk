# Port sim: the native firmware `bb_sim` (pseudo-terminal to the host, Unix socket to the air).
#
# Included by firmware/Makefile, which provides:
#   CORE_LIB       static library of the portable core and zcbor
#   CORE_INC       include directories of the core and zcbor (plain paths or -I flags)
#   CFLAGS_COMMON  flags shared by every native build
#   BUILD          the build directory (<repo>/build unless overridden, as setup.py does)
#   WERROR         -Werror, or empty
# Builds $(BUILD)/sim/bb_sim (target `sim`).

SIM_PORT_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
SIM_OUT := $(BUILD)/sim
SIM_BIN := $(SIM_OUT)/bb_sim
SIM_SRCS := $(SIM_PORT_DIR)/bb_port_sim.c $(SIM_PORT_DIR)/main.c
SIM_OBJS := $(patsubst $(SIM_PORT_DIR)/%.c,$(SIM_OUT)/%.o,$(SIM_SRCS))
SIM_INC := $(foreach d,$(CORE_INC),$(if $(filter -I%,$(d)),$(d),-I$(d))) -I$(SIM_PORT_DIR)
# -std=gnu11 last: the port uses POSIX/Linux calls (posix_openpt, prctl, getrandom).
SIM_CFLAGS := $(CFLAGS_COMMON) -std=gnu11 -Wall -Wextra $(WERROR) $(SIM_INC)

ALL_TARGETS += sim

.PHONY: sim
sim: $(SIM_BIN)

$(SIM_BIN): $(SIM_OBJS) $(CORE_LIB)
	$(CC) -o $@ $(SIM_OBJS) $(CORE_LIB)

$(SIM_OUT)/%.o: $(SIM_PORT_DIR)/%.c | $(SIM_OUT)
	$(CC) $(SIM_CFLAGS) -MMD -MP -c -o $@ $<

$(SIM_OUT):
	mkdir -p $@

-include $(SIM_OBJS:.o=.d)
