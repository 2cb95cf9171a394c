"""Python counterpart of the function micro-benchmark: the same work as regexp_replace, parse_time
and sha256 in IoTSQL (re.sub, datetime.strftime with zoneinfo, hashlib.sha256), in calls/second.

Usage: python3 Benchmarks/functions_bench.py [iterations]
"""

import hashlib
import re
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo


def bench(name, function, iterations):
    start = time.perf_counter()
    for _ in range(iterations):
        function()
    elapsed = time.perf_counter() - start
    print(f"{name} {int(iterations / elapsed)} calls/s")


def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    pattern = re.compile(r"(\d+)")
    text = "sensor-42 reading 17.5 at site-9"
    bench("regexp_replace", lambda: pattern.sub(r"<\1>", text), iterations)

    zone = ZoneInfo("America/Los_Angeles")

    def parse_time():
        moment = datetime.fromtimestamp(1_585_903_518_000 / 1000, zone)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d} " + moment.strftime("%Z")

    bench("parse_time", parse_time, iterations)

    payload = '{"device":"sensor-42","temperature":21.5,"humidity":40}'
    bench("sha256", lambda: hashlib.sha256(payload.encode()).hexdigest(), iterations)


if __name__ == "__main__":
    main()
