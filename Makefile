# iotrules — common tasks.
#   make run    installs what the build needs, builds, and replays Rules/samples/sensors.jsonl through
#               the rules in Rules/, writing data/iot.db and archive/ (the main job)
#   make test   installs what the build and the tests need, builds, and runs every test (the
#               release binary's too: make test-release)
#   make release  the optimised build, .build/release/iotrules, with the Swift runtime linked in
#   make bench  release build, then the benchmarks beside their Python counterparts
#   make bench-connectors  iotrules run on MQTT vs mosquitto_sub, on Kafka vs kcat, latency at 10k msg/s
#   make asan   the command line built with AddressSanitizer (.build-asan), run over the CLI tests, the
#               example rules, the sample replay and five fuzzers (eval batch, rule files, replay, MQTT,
#               Kafka); fails on any report, leaks too
SWIFT ?= swift
BIN := .build/debug/iotrules
# Release builds link the Swift runtime and Foundation into the executable (static, not the
# toolchain's shared libraries): the binary runs where no Swift toolchain is installed, needing
# only the Debian C libraries; calls into the runtime (retain, release) skip the PLT and the loader
# has fewer libraries to map: measured 5-12% faster and 3.7 MB less resident memory (ARCHITECTURE.md).
# Every release build here uses the same flags: a build with others rebuilds everything.
RELEASE := -c release --static-swift-stdlib
# Debian packages the build and the tests need (C libraries, the brokers and tools tests start).
DEB_PACKAGES := librdkafka-dev kcat libmosquitto-dev mosquitto mosquitto-clients libsqlite3-dev libjemalloc-dev \
	libedit-dev pkg-config openssl python3
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: deps build release run check-rules test test-release asan bench bench-core bench-daemon bench-connectors format

# Installs the Debian packages (skip with NO_APT=1 on a machine that has them).
deps:
ifndef NO_APT
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES)
endif

build: deps
	$(SWIFT) build --product iotrules

release: deps
	$(SWIFT) build $(RELEASE) --product iotrules

run: build
	rm -rf data archive
	$(BIN) run --rules Rules --source file:Rules/samples/sensors.jsonl --dead-letter data/dead-letter.jsonl
	@python3 -c "import sqlite3; c = sqlite3.connect('data/iot.db'); \
	print('data/iot.db high_temps rows:', c.execute('select count(*) from high_temps').fetchone()[0]); \
	[print('  ', r) for r in c.execute('select * from high_temps limit 3')]"
	@echo "archive files:"; find archive -type f | sort | head -20
	@echo "error-action records (data/errors/):"; cat data/errors/*.jsonl 2>/dev/null | wc -l
	@echo "dead-letter records (data/dead-letter.jsonl):"; cat data/dead-letter.jsonl 2>/dev/null | wc -l

check-rules: build
	$(BIN) check Rules

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test
	python3 Tests/cli/test_eval.py $(BIN)
	$(BIN) check Rules
	$(BIN) test Rules
	$(MAKE) test-release NO_APT=1
	$(MAKE) asan NO_APT=1

# The binary `make release` ships (the Swift runtime linked in) passes the CLI tests and the
# example rules' tests too, and links no Swift library of the toolchain's.
test-release: release
	python3 Tests/cli/test_eval.py .build/release/iotrules
	.build/release/iotrules check Rules
	.build/release/iotrules test Rules
	@if ldd .build/release/iotrules | grep -E "libswift|libFoundation|libdispatch|libBlocksRuntime"; then \
	  echo "test-release: the release binary links the toolchain's Swift libraries (above)"; exit 1; fi

# AddressSanitizer with leak checking over what the command line does: the JSON scanner, the VM and
# the C libraries' buffers are read through unsafe pointers. Each report goes to a file under
# .build-asan/reports (a test that only reads standard output would miss it on standard error); any
# file there fails the target.
ASAN_DIR ?= $(CURDIR)/.build-asan
ASAN_BIN := $(ASAN_DIR)/debug/iotrules
ASAN_REPORTS := $(ASAN_DIR)/reports
asan: deps
	$(SWIFT) build --sanitize=address --product iotrules --scratch-path $(ASAN_DIR)
	rm -rf $(ASAN_REPORTS) $(ASAN_DIR)/run && mkdir -p $(ASAN_REPORTS) $(ASAN_DIR)/run
	export ASAN_OPTIONS=detect_leaks=1:log_path=$(ASAN_REPORTS)/report; status=0; \
	{ python3 Tests/cli/test_eval.py $(ASAN_BIN) && \
	  python3 Tests/fuzz/fuzz_eval.py $(ASAN_BIN) --lines 6000 && \
	  python3 Tests/fuzz/fuzz_check.py $(ASAN_BIN) --files 1500 && \
	  python3 Tests/fuzz/fuzz_replay.py $(ASAN_BIN) --lines 5000 && \
	  python3 Tests/fuzz/fuzz_mqtt.py $(ASAN_BIN) --messages 300 && \
	  python3 Tests/fuzz/fuzz_kafka.py $(ASAN_BIN) --records 300 && \
	  $(ASAN_BIN) check Rules && $(ASAN_BIN) test Rules && \
	  (cd $(ASAN_DIR)/run && $(ASAN_BIN) run --rules $(CURDIR)/Rules \
	    --source file:$(CURDIR)/Rules/samples/sensors.jsonl --dead-letter dead-letter.jsonl --log-level warning); \
	} || status=$$?; \
	if ls $(ASAN_REPORTS)/report* >/dev/null 2>&1; then cat $(ASAN_REPORTS)/report*; \
	  echo "asan: the sanitizer reported the above"; exit 1; fi; \
	exit $$status
	@echo "asan: no report"

bench: bench-core bench-daemon

bench-core:
	$(SWIFT) build $(RELEASE) --product iotrules-bench
	python3 Benchmarks/bench.py

bench-daemon:
	bash Benchmarks/daemon_bench.sh

bench-connectors:
	bash Benchmarks/connectors_bench.sh

format:
	$(SWIFT) format -i -r Sources Tests Benchmarks Package.swift
