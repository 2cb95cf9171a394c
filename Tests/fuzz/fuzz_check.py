#!/usr/bin/env python3
"""Fuzzes `iotrules check --format json` with broken rule files, seeded and bounded.

Usage: python3 Tests/fuzz/fuzz_check.py BIN [--files N] [--seed S] [--chunk C]

`make asan` runs it on the binary built with AddressSanitizer; it runs as well on any build. Rule files
(JSON and YAML) are made from valid ones of every action kind, then broken: keys dropped, values of
the wrong type or hostile (templates that do not close, paths that leave the root, NUL, long text,
deep nesting), bytes cut or inserted, YAML's tabs, anchors and aliases, tags and repeated fuzzing.
Each chunk of files goes into one folder and one `check`; the run fails, naming the file, when:
- the exit status is not 0 (all valid) or 65 (some invalid), or a sanitizer or a fatal error speaks;
- the report is not one JSON result per file;
- a rule left whole (a valid one, of any action kind, neither broken nor cut) is not called valid;
- a problem lacks its place (the file, a line and a column from 1) or its message, or a file is
  called valid with errors, or invalid without one.
"""
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

import fuzzing

args, rnd = fuzzing.arguments("files", 1500, chunk=250)

SQL = [
    "SELECT deviceId, temp, timestamp() AS ts FROM 'sensors/+/data' WHERE temp > 30",
    "SELECT * FROM 'a/#'",
    "SELECT VALUE (SELECT VALUE v FROM r WHERE v > 1) FROM 't'",
    "SET @x = temp * 2 SELECT @x AS y FROM 't'",
]
ACTIONS = [
    {"sqlite": {"database": "data/iot.db", "table": "high_temps", "columns": {"id": "${deviceId}", "t": "${temp}"}}},
    {"sqlite": {"database": "data/iot.db", "table": "all_rows"}},
    {"file": {"path": "archive/${topic(2)}/${parse_time('yyyy-MM-dd', timestamp())}.jsonl",
              "rotate": {"maxBytes": 1048576, "maxAgeSeconds": 3600}, "fsync": "batch"}},
    {"republish": {"topic": "out/${topic(2)}", "qos": 1,
                   "headers": {"userProperties": [{"key": "k", "value": "${deviceId}"}]}}},
    {"kafka": {"destinationArn": "arn:aws:kafka:x", "topic": "t-${topic(2)}", "key": "${deviceId}",
               "clientProperties": {"bootstrap.servers": "127.0.0.1:9092"}}},
    {"http": {"url": "http://127.0.0.1:8080/in", "headers": [{"key": "x-id", "value": "${deviceId}"}]}},
    {"http": {"url": "http://127.0.0.1:8080/${topic(2)}", "confirmationUrl": "http://127.0.0.1:8080/"}},
]
HOSTILE = ["", "${", "${}", "${topic(}", "../../etc/passwd", "/abs/path", "a\u0000b", "x" * 5000, "é𝄞",
           "${get_secret('x')}", "SELECT", "'", "\"", 1e400, -1, 0, 2**70, 3.5, True, None, [], {}, [[[[[]]]]],
           {"a": {"b": {"c": {}}}}, "data/../../x.db", "bad name", "${topic(2)}/../..", "http://[::1", "ftp://x",
           "arn:aws:iam::1:role/r", "never", "always", "sometimes"]


def hostile():
    return copy.deepcopy(rnd.choice(HOSTILE))


def valid_rule(number):
    rule = {"sql": rnd.choice(SQL), "actions": [json.loads(json.dumps(rnd.choice(ACTIONS)))
                                                for _ in range(rnd.randrange(1, 4))]}
    if rnd.random() < 0.5:
        rule["errorAction"] = json.loads(json.dumps(rnd.choice(ACTIONS)))
    if rnd.random() < 0.3:
        rule["actions"][0][next(iter(rule["actions"][0]))]["retry"] = {
            "attempts": 3, "initialBackoffMs": 100, "maxBackoffMs": 1000}
    for key, value in (("description", "a rule"), ("ruleDisabled", False), ("awsIotSqlVersion", "2016-03-23"),
                       ("ruleName", "r_%d" % number)):
        if rnd.random() < 0.3:
            rule[key] = value
    if rnd.random() < 0.2:
        rule = {"topicRulePayload": rule} if rnd.random() < 0.5 else {"rule": rule}
    return rule


def broken(node, depth=0):
    """`node` with one change somewhere below it."""
    if isinstance(node, dict) and node and depth < 8:
        key = rnd.choice(list(node))
        operation = rnd.randrange(5)
        if operation == 0:
            del node[key]
        elif operation == 1:
            node[key] = hostile()
        elif operation == 2:
            node[rnd.choice(["extra", "Sql", "actions ", "retry", "errorAction", "columns"])] = hostile()
        else:
            node[key] = broken(node[key], depth + 1)
        return node
    if isinstance(node, list) and node and depth < 8:
        at = rnd.randrange(len(node))
        operation = rnd.randrange(4)
        if operation == 0:
            del node[at]
        elif operation == 1:
            node.extend(json.loads(json.dumps(node)) * rnd.choice([1, 5]))
        else:
            node[at] = broken(node[at], depth + 1)
        return node
    if isinstance(node, str) and rnd.random() < 0.5:
        at = rnd.randrange(len(node) + 1)
        return node[:at] + rnd.choice(["${", "}", "'", "\"", "..", "/", "\u0000", "\\", " AND", "("]) + node[at:]
    return hostile()


def yaml_text(node, indent=0):
    """Block-style YAML, strings double-quoted as JSON writes them without ASCII escapes (libyaml
    refuses a surrogate pair written as two escapes)."""
    pad = " " * indent
    if isinstance(node, dict) and node:
        lines = []
        for key, value in node.items():
            if isinstance(value, (dict, list)) and value:
                lines.append("%s%s:\n%s" % (pad, quoted(key), yaml_text(value, indent + 2)))
            else:
                lines.append("%s%s: %s" % (pad, quoted(key), quoted(value)))
        return "\n".join(lines)
    if isinstance(node, list) and node:
        lines = []
        for value in node:
            if isinstance(value, (dict, list)) and value:
                text = yaml_text(value, indent + 2)
                lines.append("%s- %s" % (pad, text.lstrip()))
            else:
                lines.append("%s- %s" % (pad, quoted(value)))
        return "\n".join(lines)
    return pad + quoted(node)


def quoted(value):
    return json.dumps(value, ensure_ascii=False)


def mangled(data, yaml):
    data = bytearray(data)
    for _ in range(rnd.randrange(1, 3)):
        if not data:
            break
        at = rnd.randrange(len(data))
        operation = rnd.randrange(4)
        if operation == 0:
            del data[at:]
        elif operation == 1:
            data[at] = rnd.randrange(256)
        elif yaml:
            data[at:at] = rnd.choice([b"\t", b"&a ", b"*a", b"!!binary ", b"\n---\n", b"<<: *a\n", b"? ", b"|\n", b"%YAML 1.1\n"])
        else:
            data[at:at] = rnd.choice([b"{", b"}", b"[", b",", b"\"", b"\\u", b"\xff", b"\x00", b"//", b"\xef\xbb\xbf"])
    return bytes(data)


def rule_file(number):
    """(bytes, extension, whether the rule was left whole: valid, it must check as valid)."""
    rule = valid_rule(number)
    breaks = rnd.randrange(0, 3)
    for _ in range(breaks):
        rule = broken(rule)
    yaml = rnd.random() < 0.35
    text = yaml_text(rule) + "\n" if yaml and isinstance(rule, dict) else json.dumps(rule, indent=rnd.choice([None, 2]))
    data = text.encode("utf-8", "surrogatepass")
    whole = breaks == 0
    if rnd.random() < 0.3:
        data = mangled(data, yaml)
        whole = False
    return data, ".yaml" if yaml else ".json", whole


def problems_of(result, path):
    found = []
    for severity, entries in (("error", result.get("errors")), ("warning", result.get("warnings"))):
        if not isinstance(entries, list):
            return ["no %ss list" % severity]
        for entry in entries:
            place = (entry.get("file"), entry.get("line"), entry.get("column"))
            if entry.get("file") != path or not isinstance(entry.get("line"), int) or entry["line"] < 1 \
                    or not isinstance(entry.get("column"), int) or entry["column"] < 1:
                found.append("%s without its place %r: %s" % (severity, place, entry.get("message")))
            if not entry.get("message") or entry.get("severity") != severity:
                found.append("%s without a message or severity: %r" % (severity, entry))
    if result.get("valid") is not (not result.get("errors")):
        found.append("valid is %r with %d errors" % (result.get("valid"), len(result.get("errors") or [])))
    return found


failures = 0
counts = {"valid": 0, "invalid": 0, "yaml": 0, "whole": 0}
messages = set()
workspace = tempfile.mkdtemp(prefix="fuzz_check.")
try:
    for start in range(0, args.files, args.chunk):
        folder = os.path.join(workspace, "chunk%d" % start)
        os.makedirs(folder)
        paths, whole = [], set()
        for number in range(start, min(start + args.chunk, args.files)):
            data, extension, left_whole = rule_file(number)
            path = os.path.join(folder, "rule_%05d%s" % (number, extension))
            with open(path, "wb") as file:
                file.write(data)
            paths.append(path)
            if left_whole:
                whole.add(path)
        process = subprocess.run([args.bin, "check", "--format", "json", folder], capture_output=True, timeout=600)
        stderr = process.stderr.decode("utf-8", "replace")
        if process.returncode not in (0, 65) or "Sanitizer" in stderr or "Fatal error" in stderr:
            print("%s: exit %d\n%s" % (folder, process.returncode, stderr[-4000:]))
            failures += 1
            continue
        try:
            report = json.loads(process.stdout)
        except ValueError as error:
            print("%s: the report is not JSON (%s)" % (folder, error))
            failures += 1
            continue
        results = {result.get("file"): result for result in report.get("files", [])}
        if sorted(result.get("file") for result in report.get("files", [])) != sorted(paths):
            print("%s: %d results for %d files" % (folder, len(results), len(paths)))
            failures += 1
            continue
        if (process.returncode == 65) != any(not result["valid"] for result in results.values()):
            print("%s: exit %d does not say whether a file is invalid" % (folder, process.returncode))
            failures += 1
        for path in paths:
            counts["valid" if results[path]["valid"] else "invalid"] += 1
            counts["yaml"] += path.endswith(".yaml")
            counts["whole"] += path in whole
            messages.update(entry.get("message", "")[:40] for entry in results[path]["errors"])
            found = problems_of(results[path], path)
            if path in whole and not results[path]["valid"]:
                found.append("a whole rule called invalid: %s" % [e.get("message") for e in results[path]["errors"]])
            for problem in found:
                failures += 1
                if failures <= 20:
                    shutil.copy(path, os.path.join(tempfile.gettempdir(), "fuzz_check_failed_" + os.path.basename(path)))
                    print("%s: %s (copied to %s)" % (os.path.basename(path), problem, tempfile.gettempdir()))
finally:
    shutil.rmtree(workspace, ignore_errors=True)
if failures:
    sys.exit("fuzz_check: %d problems over %d files (seed %d)" % (failures, args.files, args.seed))
print("fuzz_check: ok, %d rule files (seed %d): %d valid (%d left whole), %d invalid, %d in YAML; %d kinds of error"
      % (args.files, args.seed, counts["valid"], counts["whole"], counts["invalid"], counts["yaml"], len(messages)))
