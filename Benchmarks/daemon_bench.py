#!/usr/bin/env python3
"""Issue 4's daemon figures: replay -> one rule -> SQLite / file archive; 10 vs 10,000 rules; RSS with
10,000 rules; and beside them the Python pipelines a user would otherwise write, and SQLite's own
rate (its C API inserting the same rows pre-built, one row a statement and 32, as the sqlite action
does: what no engine writing a row per message that way can pass).

Usage: python3 Benchmarks/daemon_bench.py [--messages N] [--binary PATH]
Each figure is messages per second through the rule (wall time of the whole process, best of
--repeat runs). Run from the package root after the release builds of `iotrules` and `iotrules-bench`
(`Benchmarks/daemon_bench.sh` makes both, then runs this).
"""
import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

from peak import wait_with_peak

parser = argparse.ArgumentParser()
parser.add_argument("--messages", type=int, default=200_000)
parser.add_argument("--binary", default=".build/release/iotrules")
parser.add_argument("--bench", default=".build/release/iotrules-bench")
parser.add_argument("--repeat", type=int, default=3)
args = parser.parse_args()
binary = os.path.abspath(args.binary)
bench = os.path.abspath(args.bench)
work = tempfile.mkdtemp(prefix="iotrules-bench-")
N = args.messages

# The input: every message matches sensors/+/data and passes WHERE temp > 30.
random.seed(7)
feed = os.path.join(work, "feed.jsonl")
with open(feed, "w") as f:
    for i in range(N):
        dev = f"dev-{i % 16:02d}"
        payload = {"deviceId": dev, "temp": round(30.5 + random.random() * 10, 1),
                   "humidity": round(40 + random.random() * 20, 1), "battery": 90, "firmware": "1.4.2"}
        f.write(json.dumps({"topic": f"sensors/{dev}/data", "payload": payload, "timestamp": 1717200000000 + i},
                           separators=(",", ":")) + "\n")

SQL = "SELECT deviceId, temp, humidity, timestamp() AS ts FROM 'sensors/+/data' WHERE temp > 30"


def rules_dir(name, rules):
    path = os.path.join(work, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    for rule_name, rule in rules:
        with open(os.path.join(path, rule_name + ".json"), "w") as f:
            json.dump(rule, f)
    return path


def run_measured(command, cwd):
    """Runs command; returns (CompletedProcess, its peak resident memory in KB).

    The peak is the child's own VmHWM (see peak.py; this Python process's own high-water mark, ~90 MB
    once the pre-built rows exist, would otherwise be counted).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, text=True)
        peak = wait_with_peak(proc)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(command, proc.returncode, out.read(), err.read()), peak


def run_daemon(rules, label, extra=()):
    """Best wall time of the whole process over --repeat runs; returns (messages/s, last process)."""
    source = feed
    best = None
    rss = 0
    for _ in range(args.repeat):
        out = os.path.join(work, "out")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        start = time.perf_counter()
        proc, peak_kb = run_measured([binary, "run", "--rules", rules, "--source", "file:" + source, "--dead-letter",
                                      "dead.jsonl", "--log-level", "error", *extra], cwd=out)
        elapsed = time.perf_counter() - start
        rss = max(rss, peak_kb)
        if proc.returncode != 0:
            print(f"{label}: exit {proc.returncode}\n{proc.stderr[-2000:]}", file=sys.stderr)
            sys.exit(1)
        best = elapsed if best is None else min(best, elapsed)
        # The daemon's own figure: from the start of the source to the end of the drain.
        processed = re.search(r"dead-lettered in ([0-9.]+) s", proc.stdout)
        if processed:
            processing[label] = min(processing.get(label, 1e9), float(processed.group(1)))
        loaded = re.search(r"after ([0-9.]+) s starting", proc.stdout)
        if loaded:
            loading[label] = min(loading.get(label, 1e9), float(loaded.group(1)))
    print(f"  {label:52s} {N / best:>10,.0f} msg/s  ({best:.2f} s)   [{proc.stdout.strip()[:60]}...]")
    peaks[label] = rss
    return N / best, proc


peaks = {}
processing = {}
loading = {}


def python_pipeline(kind):
    best = None
    for _ in range(args.repeat):
        out = os.path.join(work, "py")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        start = time.perf_counter()
        if kind == "sqlite":
            db = sqlite3.connect(os.path.join(out, "py.db"))
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE high_temps (deviceId, temp, humidity, ts)")
            batch = []
            with open(feed) as f:
                for line in f:
                    m = json.loads(line)
                    parts = m["topic"].split("/")
                    p = m["payload"]
                    if len(parts) == 3 and parts[0] == "sensors" and parts[2] == "data" and p.get("temp", 0) > 30:
                        batch.append((p.get("deviceId"), p.get("temp"), p.get("humidity"), m.get("timestamp")))
                        if len(batch) >= 1000:
                            db.executemany("INSERT INTO high_temps VALUES (?,?,?,?)", batch)
                            db.commit()
                            batch = []
            db.executemany("INSERT INTO high_temps VALUES (?,?,?,?)", batch)
            db.commit()
            db.close()
        elif kind == "file":
            files = {}
            with open(feed) as f:
                for line in f:
                    m = json.loads(line)
                    parts = m["topic"].split("/")
                    if len(parts) >= 2 and parts[0] == "sensors":
                        day = time.strftime("%Y-%m-%d", time.gmtime(m["timestamp"] / 1000))
                        path = os.path.join(out, parts[1], day + ".jsonl")
                        h = files.get(path)
                        if h is None:
                            os.makedirs(os.path.dirname(path), exist_ok=True)
                            h = files[path] = open(path, "a")
                        h.write(json.dumps(m["payload"], separators=(",", ":")) + "\n")
            for h in files.values():
                h.flush()
                os.fsync(h.fileno())
                h.close()
        elif kind == "prebuilt":
            rows = [(f"dev-{i % 16:02d}", 31.5, 50.0, 1717200000000 + i) for i in range(N)]
            start = time.perf_counter()
            db = sqlite3.connect(os.path.join(out, "pre.db"))
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE high_temps (deviceId, temp, humidity, ts)")
            for i in range(0, N, 1000):
                db.executemany("INSERT INTO high_temps VALUES (?,?,?,?)", rows[i:i + 1000])
                db.commit()
            db.close()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return N / best


print(f"iotrules daemon bench: {N:,} messages, best of {args.repeat}, {os.cpu_count()} cores")
sqlite_rules = rules_dir("sqlite", [("high_temp", {"sql": SQL, "actions": [
    {"sqlite": {"database": "iot.db", "table": "high_temps"}}]})])
archive_rules = rules_dir("archive", [("archive_all", {"sql": "SELECT * FROM 'sensors/#'", "actions": [
    {"file": {"path": "archive/${topic(2)}/${parse_time('yyyy-MM-dd', timestamp())}.jsonl"}}]})])
# Like for like with the Python pipeline, which fsyncs only once at the end.
archive_never_rules = rules_dir("archive_never", [("archive_all", {"sql": "SELECT * FROM 'sensors/#'", "actions": [
    {"file": {"path": "archive/${topic(2)}/${parse_time('yyyy-MM-dd', timestamp())}.jsonl", "fsync": "never"}}]})])


def many(count, distinct_code=False):
    """`count` rules of distinct filters, one matching; with `distinct_code`, each also compares with
    its own constant, so no two compile to the same code (interning shares nothing)."""
    rules = [("match", {"sql": SQL, "actions": [{"file": {"path": "out.jsonl"}}]})]
    for i in range(count - 1):
        rules.append((f"other_{i}", {"sql": f"SELECT * FROM 'fleet/{i}/+/data' WHERE temp > {i if distinct_code else 30}",
                                     "actions": [{"file": {"path": f"other/{i}.jsonl"}}]}))
    return rules_dir(f"many{count}{'_distinct' if distinct_code else ''}", rules)


sqlite_rate, _ = run_daemon(sqlite_rules, "iotrules: replay -> 1 rule -> SQLite")
py_sqlite = python_pipeline("sqlite")
print(f"  {'python3: json.loads + filter + executemany(1000)':52s} {py_sqlite:>10,.0f} msg/s   ratio {sqlite_rate / py_sqlite:.1f}x (target 5x)")
pre = python_pipeline("prebuilt")
print(f"  {'python3: executemany of pre-built rows only':52s} {pre:>10,.0f} rows/s  ratio {sqlite_rate / pre:.2f} (target >= 0.5)")


def sqlite_action_alone():
    """The sqlite action alone writing the rule's results, built before the clock starts, in the
    dispatcher's largest batches, 4,096 (iotrules-bench sqlite-action): best of --repeat."""
    best = 0
    for _ in range(args.repeat):
        database = os.path.join(work, "action.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(database + suffix):
                os.remove(database + suffix)
        out = subprocess.run([bench, "sqlite-action", feed, SQL, database], capture_output=True, text=True,
                             timeout=600)
        if out.returncode != 0:
            sys.exit(f"iotrules-bench sqlite-action failed: {out.stderr}")
        best = max(best, json.loads(out.stdout)["per_second"])
    return best


def sqlite_ceiling(per_statement):
    """SQLite's own rate for these rows through its C API, per_statement rows a statement, nothing
    else in the loop: best of --repeat."""
    best = 0
    for _ in range(args.repeat):
        out = subprocess.run([bench, "sqlite-ceiling", str(N), os.path.join(work, "ceiling.db"), str(per_statement)],
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            sys.exit(f"iotrules-bench sqlite-ceiling failed: {out.stderr}")
        best = max(best, json.loads(out.stdout)["per_second"])
    return best


single = sqlite_ceiling(1)
print(f"  {'SQLite C API alone: pre-built rows, 1 a statement':52s} {single:>10,.0f} rows/s")
ceiling = sqlite_ceiling(32)
print(f"  {'SQLite C API alone: pre-built rows, 32 a statement':52s} {ceiling:>10,.0f} rows/s  ratio {ceiling / single:.2f} "
      f"(the action's way; the 5x target asks {5 * py_sqlite:,.0f} msg/s = {5 * py_sqlite / ceiling:.2f}x it)")
alone = sqlite_action_alone()
print(f"  {'iotrules: the sqlite action alone, pre-built results':52s} {alone:>10,.0f} rows/s  ratio {alone / pre:.2f} "
      f"(the same rows through the action, without replay and rule)")
archive_rate, _ = run_daemon(archive_rules, "iotrules: replay -> 1 rule -> file archive")
py_file = python_pipeline("file")
print(f"  {'python3: json.loads + filter + append lines':52s} {py_file:>10,.0f} msg/s   ratio {archive_rate / py_file:.1f}x (target 10x)")
tuned_rate, _ = run_daemon(archive_rules, "iotrules: ... file archive, --max-in-flight 4096",
                           ("--max-in-flight", "4096"))
print(f"  {'  (each fsync round covers 4,096 results, not 1,024)':52s} {'':>10s}         ratio {tuned_rate / py_file:.1f}x")
never_rate, _ = run_daemon(archive_never_rules, 'iotrules: ... file archive, "fsync": "never"')
print(f"  {'  (like for like: Python fsyncs only at the end)':52s} {'':>10s}         ratio {never_rate / py_file:.1f}x")
ten_dir, tenk_dir = many(10), many(10_000)
ten, _ = run_daemon(ten_dir, "iotrules: 10 rules (1 matches) -> archive")
tenk, _ = run_daemon(tenk_dir, "iotrules: 10,000 rules (1 matches) -> archive")
# The per-message cost leaves out start-up (loading and compiling the rules): the daemon's summary
# times the source from its start to the end of the drain.
per_ten = processing["iotrules: 10 rules (1 matches) -> archive"] / N
per_tenk = processing["iotrules: 10,000 rules (1 matches) -> archive"] / N
print(f"  per-message cost 10,000 vs 10 rules: {per_tenk / per_ten:.2f}x (target <= 1.5x; from the daemon's own "
      f"processing time, start-up excluded; whole runs {ten / tenk:.2f}x)")
print(f"  loading the rules (the daemon's own figure): 10,000 in "
      f"{loading.get('iotrules: 10,000 rules (1 matches) -> archive', float('nan')):.2f} s, 10 in "
      f"{loading.get('iotrules: 10 rules (1 matches) -> archive', float('nan')):.2f} s")
label_10k = "iotrules: 10,000 rules (1 matches) -> archive"
label_distinct = "iotrules: 10,000 rules, no two alike in code"
run_daemon(many(10_000, distinct_code=True), label_distinct)
print(f"  peak RSS (VmHWM) with 10,000 rules: {peaks[label_10k] / 1024:.1f} MB (target <= 50 MB); "
      f"no two alike in code: {peaks[label_distinct] / 1024:.1f} MB; largest other run: "
      f"{max(v for k, v in peaks.items() if k not in (label_10k, label_distinct)) / 1024:.1f} MB")
shutil.rmtree(work, ignore_errors=True)
