# iotrules — common tasks. `make run` replays the sample stream through the rules in Rules/.
SWIFT ?= swift
BIN := .build/debug/iotrules

.PHONY: build run test check-rules bench-daemon

build:
	$(SWIFT) build --product iotrules

run: build
	rm -rf data archive dead-letter.jsonl
	$(BIN) run --rules Rules --source file:Rules/samples/sensors.jsonl --dead-letter data/dead-letter.jsonl
	@python3 -c "import sqlite3; c = sqlite3.connect('data/iot.db'); \
	print('data/iot.db high_temps rows:', c.execute('select count(*) from high_temps').fetchone()[0]); \
	[print('  ', r) for r in c.execute('select * from high_temps limit 3')]"
	@echo "archive files:"; find archive -type f | sort | head -20
	@echo "error records:"; cat data/errors/*.jsonl 2>/dev/null | wc -l

check-rules: build
	$(BIN) check Rules

test:
	$(SWIFT) test

bench-daemon:
	bash Benchmarks/daemon_bench.sh
