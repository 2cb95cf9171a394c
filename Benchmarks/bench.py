#!/usr/bin/env python3
"""`make bench`: the language core (issue 2) and the costly functions (issue 3), each beside the same
work done by python3 in the same run, as a ratio.

Usage: python3 Benchmarks/bench.py [--bench PATH] [--messages N] [--rounds N] [--seconds S]
Run from the package root after `swift build -c release --static-swift-stdlib --product iotrules-bench`.

These machines are shared: another tenant's load moves one figure by a third from second to second.
So the engine and Python take turns, --rounds times, S seconds a measurement each, and each side's
figure is its best round (load only ever slows a run down: the best is the least disturbed, as
timeit takes the minimum); the ratio is of the two bests.

Rules: about 150-byte sensor payloads through parse payload + evaluate + serialize, one core; Python does
json.loads, a hand-written filter and projection, and json.dumps. Beside each engine figure, its
allocations per message (jemalloc's requests over one untimed pass; "n/a" without jemalloc). Then the
floor under them all: Benchmarks/json_floor.c validating the same payloads byte by byte and nothing else
(skipped without a C compiler), beside the time a message may take at 10x python3.
Functions: calls per second of one expression over a small payload (the engine's figure includes
reading the payload's field); Python does the same work with re.sub, datetime/zoneinfo, hashlib and a list comprehension.
"""
import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from zoneinfo import ZoneInfo

parser = argparse.ArgumentParser()
parser.add_argument("--bench", default=".build/release/iotrules-bench")
parser.add_argument("--messages", type=int, default=20_000)
parser.add_argument("--rounds", type=int, default=7)
parser.add_argument("--seconds", type=float, default=0.3)
args = parser.parse_args()

random.seed(11)
payloads = []
for i in range(args.messages):
    payloads.append(json.dumps({
        "deviceId": f"dev-{i % 16:02d}", "temp": round(20 + random.random() * 20, 1),
        "humidity": round(40 + random.random() * 20, 1), "battery": random.randint(5, 100),
        "firmware": "1.4.2", "location": {"site": "plant-a", "floor": i % 4},
        "r": [{"v": random.randint(0, 99)} for _ in range(3)],
    }, separators=(",", ":")))
average = sum(len(p) for p in payloads) / len(payloads)


def py_star(obj):
    return json.dumps(obj, separators=(",", ":")) if obj.get("temp", 0) > 30 else None


def py_project(obj):
    if not obj.get("temp", 0) > 30:
        return None
    return json.dumps({"deviceId": obj.get("deviceId"), "temp": obj.get("temp"),
                       "ts": int(time.time() * 1000)}, separators=(",", ":"))


def py_case(obj):
    if not (obj.get("temp", 0) > 30 and obj.get("battery", 0) > 10):
        return None
    t = obj["temp"]
    level = "hot" if t > 35 else "warm" if t > 25 else "cool"
    loc = obj.get("location", {})
    return json.dumps({"deviceId": obj.get("deviceId"), "level": level, "tempF": round(t * 1.8 + 32),
                       "fw": obj.get("firmware", "").upper(),
                       "place": f"{loc.get('site')}-{loc.get('floor')}"}, separators=(",", ":"))


def py_nested(obj):
    if not obj.get("temp", 0) > 30:
        return None
    return json.dumps({"deviceId": obj.get("deviceId"),
                       "high": [e["v"] for e in obj.get("r", []) if e.get("v", 0) > 50]}, separators=(",", ":"))


RULES = [
    ("SELECT * FROM 'sensors/+/data' WHERE temp > 30", py_star),
    ("SELECT deviceId, temp, timestamp() AS ts FROM 'sensors/+/data' WHERE temp > 30", py_project),
    ("SELECT deviceId, CASE WHEN temp > 35 THEN 'hot' WHEN temp > 25 THEN 'warm' ELSE 'cool' END AS level, "
     "round(temp * 1.8 + 32) AS tempF, upper(firmware) AS fw, "
     "concat(location.site, '-', cast(location.floor AS String)) AS place "
     "FROM 'sensors/+/data' WHERE temp > 30 AND battery > 10", py_case),
    ("SELECT deviceId, (SELECT VALUE v FROM r WHERE v > 50) AS high "
     "FROM 'sensors/+/data' WHERE temp > 30", py_nested),
]

zone = ZoneInfo("America/Los_Angeles")
pattern = re.compile(r"(\d+)")


def py_time(obj):
    moment = datetime.fromtimestamp(obj["ts"] / 1000, zone)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d} " + moment.strftime("%Z")


FUNCTIONS = [
    ("regexp_replace(text, '([0-9]+)', '<$1>')", lambda o: pattern.sub(r"<\1>", o["text"])),
    ("parse_time('yyyy-MM-dd''T''HH:mm:ss.SSS z', ts, 'America/Los_Angeles')", py_time),
    ("sha256(body)", lambda o: hashlib.sha256(o["body"].encode()).hexdigest()),
    ("transform('enrichArray', site, items)", lambda o: json.dumps([dict(x, **o["site"]) for x in o["items"]],
                                                                    separators=(",", ":"))),
]
function_payload = json.dumps({
    "text": "sensor-42 reading 17.5 at site-9", "ts": 1585903518000,
    "body": '{"device":"sensor-42","temperature":21.5,"humidity":40}',
    "site": {"site": "plant-a"}, "items": [{"a": 1}, {"b": 2}, {"c": 3}],
}, separators=(",", ":"))


def py_rate(function, inputs, minimum=args.seconds):
    for p in inputs:
        function(json.loads(p))
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < minimum:
        for p in inputs:
            function(json.loads(p))
        count += len(inputs)
    return count / (time.perf_counter() - start)


def engine(mode, path, texts):
    """(messages/s, allocations per message or None) for each text."""
    environment = dict(os.environ, IOTRULES_BENCH_SECONDS=str(args.seconds))
    out = subprocess.run([args.bench, mode, path] + texts, capture_output=True, text=True, timeout=600,
                         env=environment)
    if out.returncode != 0:
        sys.exit(f"iotrules-bench failed: {out.stderr}")
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return [(j["per_second"], j.get("allocations_per_message")) for j in lines]


def allocations(count):
    return "n/a" if count is None else f"{count:.2f}"


with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    f.write("\n".join(payloads) + "\n")
    rules_file = f.name
with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    f.write((function_payload + "\n") * 1000)
    functions_file = f.name

def best_of_rounds(mode, path, cases, inputs):
    """Per case: (best engine rate, its allocations, best Python rate), the two taking turns."""
    engine_best = [(0, None)] * len(cases)
    python_best = [0.0] * len(cases)
    for _ in range(args.rounds):
        for index, (rate, allocs) in enumerate(engine(mode, path, [text for text, _ in cases])):
            if rate > engine_best[index][0]:
                engine_best[index] = (rate, allocs)
        for index, (_, function) in enumerate(cases):
            python_best[index] = max(python_best[index], py_rate(function, inputs))
    return [(rate, allocs, py) for (rate, allocs), py in zip(engine_best, python_best)]


print(f"# rules: {len(payloads)} payloads of {average:.0f} bytes on average, one core; msgs/s, best of "
      f"{args.rounds} turns of {args.seconds} s each")
print(f"{'rule':<60} {'iotrules':>12} {'python3':>10} {'ratio':>7} {'allocs/msg':>11}")
rule_figures = best_of_rounds("rules", rules_file, RULES, payloads)
for (sql, _), (rate, allocs, py) in zip(RULES, rule_figures):
    label = sql if len(sql) <= 58 else sql[:55] + "..."
    print(f"{label:<60} {rate:>12,.0f} {py:>10,.0f} {rate / py:>6.1f}x {allocations(allocs):>11}")


def floor_ns():
    """ns a message of Benchmarks/json_floor.c over the rules' payloads, or None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("clang")
    if compiler is None:
        return None
    binary = os.path.join(tempfile.gettempdir(), f"iotrules-json-floor-{os.getpid()}")
    try:
        subprocess.run([compiler, "-O2", "-o", binary, "Benchmarks/json_floor.c"], check=True, timeout=120)
        out = subprocess.run([binary, rules_file, str(args.seconds), str(args.rounds)], capture_output=True,
                             text=True, timeout=600, check=True)
        return json.loads(out.stdout)["ns_per_message"]
    finally:
        if os.path.exists(binary):
            os.remove(binary)


floor = floor_ns()
if floor is not None:
    budgets = [1e9 / (10 * py) for _, _, py in rule_figures]
    print(f"floor: strict validation alone, byte by byte in C (Benchmarks/json_floor.c), {floor:.0f} ns a message; "
          f"10x python3 leaves {min(budgets):.0f}-{max(budgets):.0f} ns a message for reading, evaluating and "
          f"writing")

print("\n# functions: calls/s of one expression over a small payload")
print(f"{'expression':<60} {'iotrules':>12} {'python3':>10} {'ratio':>7} {'allocs/call':>11}")
inputs = [function_payload] * 1000
for (expression, _), (rate, allocs, py) in zip(
        FUNCTIONS, best_of_rounds("functions", functions_file, FUNCTIONS, inputs)):
    label = expression if len(expression) <= 58 else expression[:55] + "..."
    print(f"{label:<60} {rate:>12,.0f} {py:>10,.0f} {rate / py:>6.1f}x {allocations(allocs):>11}")
