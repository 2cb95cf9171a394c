#!/usr/bin/env bash
# Issue 4's daemon figures (see daemon_bench.py). Builds the release binary first.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product iotrules >/dev/null
swift build -c release --product iotrules-bench >/dev/null
python3 Benchmarks/daemon_bench.py "$@"
