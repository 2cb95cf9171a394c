#!/usr/bin/env python3
"""Fuzzes `iotrules run` over a replay of hostile lines, seeded and bounded, and checks nothing is lost.

Usage: python3 Tests/fuzz/fuzz_replay.py BIN [--lines N] [--seed S]

`make asan` runs it on the binary built with AddressSanitizer; it runs as well on any build. In a
temporary folder, one rule (`SELECT * FROM '#'`) archives every message to a file and writes its
topic to a SQLite table, a second archives each message to a file named by its topic; the replay
mixes well-formed lines (topics of many shapes, `..` and hidden names among them, `$` topics that a
leading `#` does not match, JSON payloads, binary and empty payloads, byte order marks, blank lines)
with malformed ones (not an object, no topic, a wildcard or NUL in the topic, both payload keys, bad
base64, a client id or timestamp of the wrong type). The run fails when:
- `run` does not exit 0, or a sanitizer or a fatal error speaks;
- its summary's lines, messages and malformed lines are not the counts written, or a message is not
  acknowledged;
- the archive does not hold, in order, one line per message the rule matches: the document itself
  (read back by Python) or, for bytes that are not JSON, `{"payload_base64": ...}` of those bytes;
- the table does not hold the same topics in the same order;
- a second rule archives to `per-topic/${topic()}.jsonl`: a matched message is not either a line of
  its topic's file or, where the topic renders a path the archive refuses (`..`, a hidden or empty
  name, a name too long), a dead-letter record naming its topic; or a file no topic names appears,
  or anything beside the archive roots.
"""
import base64
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import fuzzing

args, rnd = fuzzing.arguments("lines", 3000)

TOPICS = ["a", "sensors/dev-1/data", "a/b/c/d/e/f/g/h", "a//b/", "/", "é/𝄞", "with space/x", "x" * 300,
          "$aws/things/t/shadow/update", "$SYS/broker", "a/$b", "\\", "'quoted'", "a\"b", "..", "a/../../b",
          ".hidden/x", "a/./b", "-rf", "a/.."]


def well_formed():
    """(line, the archive line expected: ("json", document) or ("bytes", bytes), the topic)."""
    topic = rnd.choice(TOPICS)
    line = {"topic": topic}
    kind = rnd.randrange(4)
    if kind == 0:
        value = fuzzing.document(rnd)
        line["payload"] = value
        expected = ("json", value)
    elif kind == 1:
        value = fuzzing.document(rnd)
        line["payload_base64"] = base64.b64encode(json.dumps(value).encode()).decode()
        expected = ("json", value)
    elif kind == 2:
        data = bytes([rnd.choice(fuzzing.NOT_JSON_FIRST)]) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(200)))
        line["payload_base64"] = base64.b64encode(data).decode()
        expected = ("bytes", data)
    else:
        line["payload_base64"] = ""
        expected = ("bytes", b"")
    if rnd.random() < 0.2:
        line["clientId"] = rnd.choice(["dev-1", "", "é" * 30])
    if rnd.random() < 0.2:
        line["timestamp"] = rnd.choice([0, 1700000000123])
    text = json.dumps(line, ensure_ascii=rnd.random() < 0.5).encode()
    if rnd.random() < 0.05:
        text = b"\xef\xbb\xbf" + text
    return text, expected, topic


def malformed():
    kind = rnd.randrange(10)
    topic = rnd.choice(TOPICS)
    lines = [
        lambda: b"[1,2]", lambda: b'"text"', lambda: b"not json at all", lambda: b'{"topic": "a", "payload": ',
        lambda: json.dumps({"payload": 1}).encode(),
        lambda: json.dumps({"topic": rnd.choice(["", "a/+", "#", "a/#", "a\u0000b"]), "payload": 1}).encode(),
        lambda: json.dumps({"topic": topic, "payload": 1, "payload_base64": "AA=="}).encode(),
        lambda: json.dumps({"topic": topic, "payload_base64": rnd.choice(["!!!", "A", "AAA=A"])}).encode(),
        lambda: json.dumps({"topic": topic, "payload": 1, "clientId": 5}).encode(),
        lambda: json.dumps({"topic": topic, "payload": 1, "timestamp": rnd.choice(["x", 1.5])}).encode(),
    ]
    return lines[kind]()


feed, expected, malformed_count, line_count = [], [], 0, 0
for _ in range(args.lines):
    if rnd.random() < 0.03:
        feed.append(rnd.choice([b"", b"   "]))
        continue
    line_count += 1
    if rnd.random() < 0.2:
        feed.append(malformed())
        malformed_count += 1
    else:
        text, outcome, topic = well_formed()
        feed.append(text)
        expected.append((outcome, topic))

problems = []
workspace = tempfile.mkdtemp(prefix="fuzz_replay.")
try:
    os.makedirs(os.path.join(workspace, "rules"))
    with open(os.path.join(workspace, "rules", "all.json"), "w") as file:
        json.dump({"sql": "SELECT * FROM '#'", "actions": [
            {"file": {"path": "out/all.jsonl"}},
            {"sqlite": {"database": "data/topics.db", "table": "topics", "columns": {"topic": "${topic()}"}}}]}, file)
    with open(os.path.join(workspace, "rules", "per_topic.json"), "w") as file:
        json.dump({"sql": "SELECT * FROM '#'", "actions": [{"file": {"path": "per-topic/${topic()}.jsonl"}}]}, file)
    with open(os.path.join(workspace, "feed.jsonl"), "wb") as file:
        file.write(b"\n".join(feed) + b"\n")
    process = subprocess.run([args.bin, "run", "--rules", "rules", "--source", "file:feed.jsonl", "--dead-letter",
                              "dead-letter.jsonl", "--log-level", "error"], cwd=workspace, capture_output=True,
                             timeout=600)
    output = (process.stdout + process.stderr).decode("utf-8", "replace")
    summary = re.search(r"(\d+) lines, (\d+) messages \((\d+) malformed\).*?(\d+) not acknowledged", output)
    if process.returncode != 0 or "Sanitizer" in output or "Fatal error" in output or not summary:
        problems.append("run: exit %d\n%s" % (process.returncode, output[-4000:]))
    else:
        counts = tuple(int(group) for group in summary.groups())
        wanted = (line_count, line_count - malformed_count, malformed_count, 0)
        if counts != wanted:
            problems.append("summary: lines, messages, malformed, not acknowledged %r, written %r" % (counts, wanted))
        dead_letter_path = os.path.join(workspace, "dead-letter.jsonl")
        records = [json.loads(line) for line in open(dead_letter_path, "rb")] if os.path.exists(dead_letter_path) else []
        if any(record.get("ruleName") != "per_topic" for record in records):
            problems.append("records of the rule 'all' reached the dead-letter file")
        matched = [(outcome, topic) for outcome, topic in expected if not topic.startswith("$")]
        # A topic that renders a path the archive refuses (leaving its root, a hidden or empty name,
        # a name too long) sends each of its messages to the dead-letter file, naming it; every
        # other topic's messages are lines of its own file. Nothing else is written.
        topic_files = set(topic + ".jsonl" for _, topic in matched)
        for topic in set(topic for _, topic in matched):
            wanted = sum(1 for _, other in matched if other == topic)
            path = os.path.join(workspace, "per-topic", topic + ".jsonl")
            lines = open(path, "rb").read().count(b"\n") if os.path.isfile(path) else 0
            refused = sum(1 for record in records if record.get("topic") == topic)
            if lines + refused != wanted or (lines and refused):
                problems.append("topic %r: %d messages, %d lines in its file, %d dead-lettered" % (
                    topic[:40], wanted, lines, refused))
        if len(records) != sum(1 for _, topic in matched
                               if not os.path.isfile(os.path.join(workspace, "per-topic", topic + ".jsonl"))):
            problems.append("%d dead-letter records for the topics without a file" % len(records))
        written = set()
        for folder, _, names in os.walk(os.path.join(workspace, "per-topic")):
            written.update(os.path.relpath(os.path.join(folder, name), os.path.join(workspace, "per-topic"))
                           for name in names)
        if written - topic_files:
            problems.append("files no topic names: %r" % sorted(written - topic_files)[:5])
        if set(os.listdir(workspace)) - {"rules", "feed.jsonl", "out", "data", "per-topic", "dead-letter.jsonl"}:
            problems.append("written beside the archive roots: %r" % sorted(os.listdir(workspace)))
        archive_path = os.path.join(workspace, "out", "all.jsonl")
        archived = open(archive_path, "rb").read().split(b"\n")[:-1] if os.path.exists(archive_path) else []
        problems += fuzzing.received_problems(
            "archive line", archived, [outcome for outcome, _ in matched], fuzzing.archived_as)
        database = os.path.join(workspace, "data", "topics.db")
        rows = [row[0] for row in sqlite3.connect(database).execute("SELECT topic FROM topics ORDER BY rowid")] \
            if os.path.exists(database) else []
        if rows != [topic for _, topic in matched]:
            problems.append("table: %d topics for %d matched messages, or out of order" % (len(rows), len(matched)))
finally:
    shutil.rmtree(workspace, ignore_errors=True)
if problems:
    print("\n".join(problems))
    sys.exit("fuzz_replay: %d problems over %d lines (seed %d)" % (len(problems), args.lines, args.seed))
print("fuzz_replay: ok, %d lines (seed %d): %d messages, %d malformed, every matched one archived and stored in order"
      % (args.lines, args.seed, line_count - malformed_count, malformed_count))
