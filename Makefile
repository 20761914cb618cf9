# blebridge — every entry point a newcomer needs. `make test` and `make demo` set everything up
# on a fresh machine: a virtual environment in .venv, the package and its test dependencies from
# PyPI, the native firmware (build/sim/bb_sim) built with the system gcc.

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BB     := $(VENV)/bin/blebridge

.PHONY: all venv firmware test test-c test-py protocol-check pio-check arm-size demo bench \
        conformance nimble-sim firmware-check firmware-link-nrf hil fuzz soak clean help

all: firmware

help:
	@echo "make demo          two simulated boards: a peripheral and a central talk (start here)"
	@echo "make test          everything: protocol drift, C unit tests, PlatformIO config, pytest"
	@echo "make bench-remote  blebridge bench through ser2net, socat, pyserial's RFC 2217 server"
	@echo "make bench         RPC and event benchmarks, 1-8 boards at once, board-to-board BLE throughput, radio timing"
	@echo "make soak [SOAK_MINUTES=10]   four simulated boards under churn and floods; leak check"
	@echo "make arm-size      Cortex-M4F build of the core, text/data/bss vs the budget"
	@echo "make fuzz [FUZZ_SECONDS=60]   libFuzzer harnesses (clang, ASan+UBSan), N s each"
	@echo "make conformance [MICROPYTHON=<micropython checkout>] [MICROPYTHON_LIB=<micropython-lib checkout>] [ZERYNTH=<dir of zerynth lib checkouts>] [NIMBLE=<mynewt-nimble>]"
	@echo "                   MicroPython's multi_bluetooth suite; with MICROPYTHON_LIB also aioble's"
	@echo "                   multitests (upstream aioble and ours) and its example pairs;"
	@echo "                   [ADAFRUIT_BLE=<Adafruit_CircuitPython_BLE checkout>] its examples as pairs"
	@echo "                   [ADAFRUIT_BLE_HEART_RATE=<..._BLE_Heart_Rate checkout>] and that library's example"
	@echo "                   with NIMBLE also the MicroPython suites on NimBLE boards"
	@echo "make nimble-sim NIMBLE=<mynewt-nimble checkout>   the NimBLE port as a simulated board (sim:NAME?stack=nimble)"
	@echo "make firmware-check NRF_HEADERS=<dir> NIMBLE_HEADERS=<dir>   syntax-check board ports"
	@echo "make firmware-link-nrf NRF_CORE=<Adafruit_nRF52_Arduino> CMSIS=<CMSIS_5>   link the nRF52840 firmware"
	@echo "make hil [HIL_RIG=rig.toml | LG_ENV=lab.yaml] [HIL_WORKERS=N]   end-to-end tests on real boards (hil/README.md)"

$(STAMP): pyproject.toml
	@echo "== setting up $(VENV): installing pip, then blebridge with the [test,sim,circuitpython] extras of pyproject.toml from PyPI (bumble, pytest, hypothesis, zcbor, ...; first time: a few minutes)"
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[test,sim,circuitpython]'
	touch $@

venv: $(STAMP)

firmware: $(STAMP)
	$(MAKE) -C firmware PYTHON=$(abspath $(VPY))

protocol-check: $(STAMP)
	$(VPY) protocol/gen.py --check
	$(VPY) protocol/gen_docs.py --check

test-c: $(STAMP)
	$(MAKE) -C firmware PYTHON=$(abspath $(VPY)) test

pio-check: $(STAMP)
	@$(VPY) -c 'import platformio' 2>/dev/null || echo "== installing PlatformIO into $(VENV) from PyPI (first time: about a minute)"
	$(VPY) -m pip install --quiet platformio
	$(VENV)/bin/pio project config --project-dir . > /dev/null
	@echo "pio project config: ok"

# Tests run in a new random order each time (pytest-randomly); the header prints the seed, and
# `make test-py PYTEST_ARGS=--randomly-seed=N` replays an order (`-p no:randomly`: file order).
test-py: firmware
	$(VPY) -m pytest $(PYTEST_ARGS)

test: protocol-check test-c pio-check test-py

arm-size: $(STAMP)
	$(MAKE) -C firmware PYTHON=$(abspath $(VPY)) arm-size

# Each libFuzzer harness in firmware/fuzz runs FUZZ_SECONDS s (needs clang + libclang-rt-14-dev).
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(MAKE) -C firmware PYTHON=$(abspath $(VPY)) fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

demo: firmware
	$(VPY) examples/demo.py

# The bridge-vs-bare-Bumble and _bleio benches measure the bridge's own overhead: on an air of its
# own with fast timing (zero-latency delivery), where the radio does not set the pace. aioble's
# runs at the radio's pace (default air): its notified() keeps only the latest notification, as
# aioble does, so on a zero-latency air it measures what it drops, not what it keeps up with.
# bench_radio runs real link-layer timing (docs/simulator.md) against the spec's figures.
BENCH_FAST_AIR ?= /tmp/blebridge-bench-$(shell id -u)/fast-air.sock
bench: firmware
	$(BB) bench --port sim:bench-board
	$(VPY) -m blebridge.bench_scale
	BLEBRIDGE_SIM_TIMING=fast $(VPY) -m blebridge.micropython.bench \
	  --ports 'sim:bench-peripheral?air=$(BENCH_FAST_AIR)' 'sim:bench-central?air=$(BENCH_FAST_AIR)'
	$(VPY) -m blebridge.aioble.bench
	$(VPY) -m blebridge.micropython.bench_radio
	BLEBRIDGE_SIM_TIMING=fast $(VPY) -m blebridge.circuitpython.bench \
	  --ports 'sim:bench-bleio-p?air=$(BENCH_FAST_AIR)' 'sim:bench-bleio-c?air=$(BENCH_FAST_AIR)' \
	          'sim:bench-mp-p?air=$(BENCH_FAST_AIR)' 'sim:bench-mp-c?air=$(BENCH_FAST_AIR)'

# blebridge bench on one simulated board directly and behind ser2net, socat and pyserial's RFC
# 2217 server (tests/remote/bench_remote.py; README "Remote boards").
.PHONY: bench-remote
bench-remote: firmware
	$(VPY) tests/remote/bench_remote.py

# Not part of `make test`: it runs for SOAK_MINUTES after a 30 s warm-up (README.md, Soak).
SOAK_MINUTES ?= 10
SOAK_BOARDS  ?= 4
soak: firmware
	$(VPY) -m blebridge.soak --minutes $(SOAK_MINUTES) --boards $(SOAK_BOARDS)

# ADAFRUIT_BLE: the adafruit_ble examples also need the libraries two of them import
# (Bluefruit Connect packets, HID keyboard): pyproject's test extra brings them into the venv.
# With NIMBLE=<mynewt-nimble checkout> also: NimBLE boards (make nimble-sim) against NimBLE and
# against the simulator's own boards, then the MicroPython end-to-end suite on NimBLE boards.
NIMBLE_STACK_PAIRS := nimble,nimble nimble,bumble bumble,nimble
conformance: firmware
	@test -n "$(MICROPYTHON)$(ZERYNTH)$(ADAFRUIT_BLE)" || { echo "usage: make conformance [MICROPYTHON=<path to a micropython checkout>] [MICROPYTHON_LIB=<path to a micropython-lib checkout>] [ZERYNTH=<dir holding lib-nordic-nrf52_ble and lib-espressif-esp32ble>] [ADAFRUIT_BLE=<path to an Adafruit_CircuitPython_BLE checkout> [ADAFRUIT_BLE_HEART_RATE=<path>]] [NIMBLE=<mynewt-nimble checkout>]"; exit 2; }
ifneq ($(NIMBLE),)
	@test -n "$(MICROPYTHON)" || { echo "make conformance: NIMBLE= runs the MicroPython suites on NimBLE boards: give MICROPYTHON= too"; exit 2; }
	$(MAKE) nimble-sim NIMBLE=$(NIMBLE)
endif
	@rc=0; \
	$(VPY) conformance/run_conformance.py $(if $(MICROPYTHON),--micropython $(MICROPYTHON)) $(if $(MICROPYTHON_LIB),--micropython-lib $(MICROPYTHON_LIB)) $(if $(ZERYNTH),--zerynth $(ZERYNTH)) $(if $(ADAFRUIT_BLE),--adafruit-ble $(ADAFRUIT_BLE)) $(if $(ADAFRUIT_BLE_HEART_RATE),--adafruit-ble-heart-rate $(ADAFRUIT_BLE_HEART_RATE)) || rc=1; \
	for s in $(if $(NIMBLE),$(NIMBLE_STACK_PAIRS)); do \
	    $(VPY) conformance/run_conformance.py --micropython $(MICROPYTHON) $(if $(MICROPYTHON_LIB),--micropython-lib $(MICROPYTHON_LIB)) --stacks $$s || rc=1; \
	done; \
	$(if $(NIMBLE),BLEBRIDGE_SIM_STACK=nimble $(VPY) -m pytest -q -p no:randomly tests/micropython/test_boards_end_to_end.py tests/sim/test_nimble_board.py || rc=1;) \
	exit $$rc

# The nimble port on the real NimBLE host, natively, as a simulated board (build/nimble-sim/;
# firmware/ports/nimble/linux.mk). Needs libmbedtls-dev; not part of `make test` or CI: the
# NimBLE tree is fetched by hand.
nimble-sim: firmware
	$(MAKE) -C firmware -f ports/nimble/linux.mk PYTHON=$(abspath $(VPY)) nimble-sim NIMBLE=$(NIMBLE)

firmware-check: $(STAMP)
	$(MAKE) -C firmware PYTHON=$(abspath $(VPY)) check NRF_HEADERS=$(NRF_HEADERS) $(if $(CMSIS_HEADERS),CMSIS_HEADERS=$(CMSIS_HEADERS)) NIMBLE_HEADERS="$(NIMBLE_HEADERS)"

# Full link of the nrf_sd firmware for both nRF52840 boards (firmware/ports/nrf_sd/link.mk).
firmware-link-nrf: $(STAMP)
	$(MAKE) -C firmware -f ports/nrf_sd/link.mk PYTHON=$(abspath $(VPY)) firmware-link-nrf NRF_CORE=$(NRF_CORE) CMSIS=$(CMSIS)

# LG_ENV: a labgrid environment naming the lab's places; HIL_WORKERS: pytest-xdist workers (-n),
# one per board set the lab has (`make -n` is make's own dry run, hence a variable).
hil: firmware
	$(VPY) -m pytest -q -rs -p hil.plugin -m hil $(if $(HIL_RIG),--hil-rig $(HIL_RIG)) \
	    $(if $(LG_ENV),--lg-env $(LG_ENV)) $(if $(HIL_WORKERS),-n $(HIL_WORKERS)) tests

clean:
	rm -rf build
