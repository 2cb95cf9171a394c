#!/usr/bin/env python3
"""Before/after comparison of two iotrules binaries on this noisy, shared machine kind.

Runs `iotrules run` over the same replay feed N times per binary, alternating them, and prints each
one's median wall and CPU (user + system) seconds and its median peak resident memory (VmHWM, polled
from /proc every 10 ms). Single runs move by ±30% here; medians of interleaved runs hold still enough
to see a 5% change.

Usage: python3 Benchmarks/ab.py N BINARY_A BINARY_B RULES_FOLDER FEED [more `iotrules run` arguments]

Example: keep the binary before a change, rebuild, compare:
  cp .build/release/iotrules /tmp/iotrules.before
  (change, then) make release
  python3 Benchmarks/ab.py 9 /tmp/iotrules.before .build/release/iotrules Rules Rules/samples/sensors.jsonl
"""
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from peak import wait_with_peak

if len(sys.argv) < 6:
    sys.exit(__doc__)
count = int(sys.argv[1])
binaries = [os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])]
rules, feed = os.path.abspath(sys.argv[4]), os.path.abspath(sys.argv[5])
extra = sys.argv[6:]
runs = {binary: [] for binary in binaries}
with tempfile.TemporaryDirectory(prefix="iotrules-ab-") as work:
    for _ in range(count):
        for binary in binaries:
            out = tempfile.mkdtemp(dir=work)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            process = subprocess.Popen([binary, "run", "--rules", rules, "--source", "file:" + feed,
                                        "--dead-letter", "dead.jsonl", "--log-level", "error", *extra], cwd=out,
                                       stdout=subprocess.DEVNULL)
            peak = wait_with_peak(process)
            wall = time.perf_counter() - start
            if process.returncode != 0:
                sys.exit(f"{binary} exited with {process.returncode}")
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            runs[binary].append((wall, cpu, peak / 1024))
for binary, values in runs.items():
    print(f"{binary}: wall median {statistics.median(v[0] for v in values):.3f} s "
          f"(best {min(v[0] for v in values):.3f}), "
          f"CPU median {statistics.median(v[1] for v in values):.3f} s "
          f"(best {min(v[1] for v in values):.3f}), peak RSS median {statistics.median(v[2] for v in values):.1f} MB "
          f"({len(values)} runs)")
