#!/usr/bin/env python3
"""Before/after comparison of two iotrules-bench builds on `make bench-core`'s rules (or the given
statements), for a shared machine where another tenant's load moves a single figure by a third.

Usage: python3 Benchmarks/ab_core.py ROUNDS BENCH_A BENCH_B PAYLOADS [SQL ...]

Each round runs A then B (then B then A: the order alternates) for a short measurement each
(IOTRULES_BENCH_SECONDS=0.3). Load only ever slows a run down, so the figure quoted is each
build's best rate over the rounds, with the median beside it; the ratio is B over A.
"""
import json
import os
import statistics
import subprocess
import sys

if len(sys.argv) < 5:
    sys.exit(__doc__)
rounds, bench_a, bench_b, payloads = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
statements = sys.argv[5:] or [
    "SELECT * FROM 'sensors/+/data' WHERE temp > 30",
    "SELECT deviceId, temp, timestamp() AS ts FROM 'sensors/+/data' WHERE temp > 30",
    "SELECT deviceId, CASE WHEN temp > 35 THEN 'hot' WHEN temp > 25 THEN 'warm' ELSE 'cool' END AS level, "
    "round(temp * 1.8 + 32) AS tempF, upper(firmware) AS fw, "
    "concat(location.site, '-', cast(location.floor AS String)) AS place "
    "FROM 'sensors/+/data' WHERE temp > 30 AND battery > 10",
    "SELECT deviceId, (SELECT VALUE v FROM r WHERE v > 50) AS high FROM 'sensors/+/data' WHERE temp > 30",
]
environment = dict(os.environ, IOTRULES_BENCH_SECONDS=os.environ.get("IOTRULES_BENCH_SECONDS", "0.3"))
rates = {bench_a: [[] for _ in statements], bench_b: [[] for _ in statements]}
for round_index in range(rounds):
    order = (bench_a, bench_b) if round_index % 2 == 0 else (bench_b, bench_a)
    for bench in order:
        out = subprocess.run([bench, "rules", payloads, *statements], capture_output=True, text=True,
                             env=environment, timeout=600, check=True)
        for index, line in enumerate(out.stdout.splitlines()):
            rates[bench][index].append(json.loads(line)["per_second"])
for index, statement in enumerate(statements):
    a, b = rates[bench_a][index], rates[bench_b][index]
    print(f"{statement[:60]:60s}  A best {max(a):>10,} median {statistics.median(a):>10,.0f}  "
          f"B best {max(b):>10,} median {statistics.median(b):>10,.0f}  "
          f"B/A best {max(b) / max(a):.2f} median {statistics.median(b) / statistics.median(a):.2f}")
