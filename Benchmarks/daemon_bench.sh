#!/usr/bin/env bash
# Issue 4's daemon figures (see daemon_bench.py). Builds the release binary first.
set -euo pipefail
cd "$(dirname "$0")/.."
# The release build as `make release` makes it (see the Makefile): the Swift runtime linked in.
swift build -c release --static-swift-stdlib --product iotrules >/dev/null
swift build -c release --static-swift-stdlib --product iotrules-bench >/dev/null
python3 Benchmarks/daemon_bench.py "$@"
