#!/usr/bin/env bash
# Issue 5's connector figures: iotrules run on MQTT vs mosquitto_sub (same stream, same run, as a
# ratio), on Kafka (librdkafka's mock cluster, hosted by the bench tool) vs kcat -C, and the latency
# publish -> action p50/p99 at a fixed 10,000 msg/s. Release build first. Options pass through:
#   --messages N (MQTT, default 200000) --kafka-messages N (default 200000) --kafka-action-messages N
#   (default 100000) --rate R (default 10000)
#   --seconds S (latency run length, default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in mosquitto mosquitto_sub kcat; do
  command -v "$tool" >/dev/null || { echo "connectors_bench: $tool is missing (make deps)" >&2; exit 69; }
done
# The release build as `make release` makes it (see the Makefile): the Swift runtime linked in.
swift build -c release --static-swift-stdlib --product iotrules >/dev/null
swift build -c release --static-swift-stdlib --product connectors-bench >/dev/null
bin="$(swift build -c release --static-swift-stdlib --show-bin-path)"
"$bin/connectors-bench" "$bin/iotrules" "$@"
