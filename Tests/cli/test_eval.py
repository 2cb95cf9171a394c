#!/usr/bin/env python3
"""End-to-end tests of the `iotrules` command line: `eval` (one shot and the batch protocol),
`explain`, and a few `check` and `import aws` cases. Run by `make test` after the Swift tests: python3 Tests/cli/test_eval.py .build/debug/iotrules
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".build/debug/iotrules")
failures = []


def check(name, condition, detail=""):
    if not condition:
        failures.append(f"{name}: {detail}")


def batch(requests):
    lines = [r if isinstance(r, str) else json.dumps(r) for r in requests]
    p = subprocess.run([BIN, "eval", "--batch", "-"], input="\n".join(lines) + "\n", capture_output=True,
                       text=True, timeout=60)
    check("batch exit code", p.returncode == 0, p.stderr)
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


answers = batch([
    {"sql": "SELECT color FROM 'a/b'", "topic": "a/b", "payload": {"color": "red", "n": 1}},
    {"sql": "SELECT * FROM 'a/+' WHERE n > 5", "topic": "a/b", "payload": {"n": 1}},
    {"sql": "SELECT * FROM 'x/y'", "topic": "other", "payload": {"n": 1}},
    {"sql": "SELECT * FROM 'bin'", "topic": "bin", "payload_base64": "AAEC/w=="},
    {"sql": "SELECT a, FROM 't'", "topic": "t", "payload": {}},
    "this line is not JSON",
    {"topic": "t", "payload": {}},
    {"sql": "SELECT * FROM 's/+'", "topic": "s/dev1", "payload": {"id": 7}, "template": "out/${topic(2)}/${id}"},
    {"sql": "SELECT clientid() AS c, timestamp() AS t FROM 't'", "topic": "t", "payload": {},
     "context": {"clientid": "dev-9", "timestamp_ms": 1700000000123}},
    # SELECT * passes the exact bytes through: spacing and number spelling kept only where AWS would.
    {"sql": "SELECT * FROM 't'", "topic": "t", "payload": {"a": 1.50, "b": [1, 2]}},
    {"sql": "SELECT 0.1 + 0.2 AS x, '1' + 2 AS s, 10 / 0 AS z FROM 't'", "topic": "t", "payload": {}},
    {"sql": "SELECT 10.0 AS x FROM 't'", "topic": "t", "payload": {}, "sql_version": "2015-10-08"},
    {"sql": "SELECT nosuch(1) FROM 't'", "topic": "t", "payload": {}},
    {"sql": "SELECT missing FROM 't'", "topic": "t", "payload": {}},
])
check("count", len(answers) == 14, f"{len(answers)} answers")
check("projection", json.loads(answers[0]["payload"]) == {"color": "red"}, answers[0])
check("where false", answers[1] == {"match": False}, answers[1])
check("topic mismatch", answers[2] == {"match": False}, answers[2])
check("binary", answers[3].get("payload_base64") == "AAEC/w==", answers[3])
e = answers[4].get("error", {})
check("parse error", e.get("kind") == "parse" and e.get("line") == 1 and e.get("column") == 11, answers[4])
check("input error", answers[5].get("error", {}).get("kind") == "input", answers[5])
check("no sql", answers[6].get("error", {}).get("kind") == "input", answers[6])
check("template", answers[7].get("template") == "out/dev1/7", answers[7])
check("context", json.loads(answers[8]["payload"]) == {"c": "dev-9", "t": 1700000000123}, answers[8])
check("passthrough", answers[9].get("payload") == '{"a": 1.5, "b": [1, 2]}' or
      json.loads(answers[9]["payload"]) == {"a": 1.5, "b": [1, 2]}, answers[9])
check("decimal and strings", json.loads(answers[10]["payload"]) == {"x": 0.3, "s": "12"}, answers[10])
check("2015 decimal", answers[11].get("payload") in ('{"x":10.0}',), answers[11])
check("unknown function", answers[12].get("error", {}).get("kind") == "compile", answers[12])
check("bare undefined member", answers[13].get("payload") == "{}", answers[13])

# One shot, piped: the exact bytes; no match says so on stderr and exits 0; a bad statement exits 65.
p = subprocess.run([BIN, "eval", "--sql", "SELECT temp * 2 AS t FROM 's/+'", "--topic", "s/1",
                    "--payload", '{"temp": 21.5}'], capture_output=True, text=True, timeout=60)
check("one shot", p.returncode == 0 and p.stdout.strip() == '{"t":43.0}' or p.stdout.strip() == '{"t":43}',
      p.stdout + p.stderr)
p = subprocess.run([BIN, "eval", "--sql", "SELECT * FROM 's' WHERE false", "--topic", "s", "--payload", "{}"],
                   capture_output=True, text=True, timeout=60)
check("one shot no match", p.returncode == 0 and p.stdout == "" and "no match" in p.stderr, p.stdout + p.stderr)
p = subprocess.run([BIN, "eval", "--sql", "SELECT FROM 's'", "--topic", "s", "--payload", "{}"],
                   capture_output=True, text=True, timeout=60)
check("one shot bad sql", p.returncode == 65 and "1:8: error:" in p.stderr and "^" in p.stderr, p.stderr)
# Without FROM, AWS runs a rule only on its Basic Ingest topic: eval says so for any other topic.
p = subprocess.run([BIN, "eval", "--sql", "SELECT topic() AS t", "--topic", "x/y", "--payload", "{}"],
                   capture_output=True, text=True, timeout=60)
check("no FROM, plain topic", p.returncode == 0 and p.stdout == '{"t":"x/y"}' and "note: without FROM" in p.stderr,
      (p.returncode, p.stdout, p.stderr))
p = subprocess.run([BIN, "eval", "--sql", "SELECT topic() AS t", "--topic", "$aws/rules/r/x/y", "--payload", "{}"],
                   capture_output=True, text=True, timeout=60)
check("no FROM, Basic Ingest topic", p.returncode == 0 and p.stdout == '{"t":"x/y"}' and p.stderr == "",
      (p.returncode, p.stdout, p.stderr))
# A match stopped by its step budget is Undefined, said as the daemon logs it (it looked like no match).
p = subprocess.run([BIN, "eval", "--sql", "SELECT regexp_matches(s, '(a+)+$') AS m FROM 't'", "--topic", "t",
                    "--payload", '{"s": "' + "a" * 40 + '!"}'], capture_output=True, text=True, timeout=60)
check("stopped regex said", p.returncode == 0 and p.stdout == "{}"
      and "1 regular-expression match(es) stopped by the step budget" in p.stderr, (p.returncode, p.stdout, p.stderr))

p = subprocess.run([BIN, "explain", "--sql", "SELECT a FROM 't' WHERE b > 1"], capture_output=True, text=True,
                   timeout=60)
check("explain", p.returncode == 0 and "LoadPath" in p.stdout and "Output" in p.stdout, p.stdout + p.stderr)

p = subprocess.run([BIN, "functions", "sha"], capture_output=True, text=True, timeout=60)
check("functions", p.returncode == 0 and "sha256(" in p.stdout and "md5(" not in p.stdout, p.stdout + p.stderr)
p = subprocess.run([BIN, "functions", "zzz"], capture_output=True, text=True, timeout=60)
check("functions zzz", p.returncode == 1 and p.stderr == "iotrules: error: no function starts with 'zzz'\n"
      and p.stdout == "", (p.returncode, p.stderr))

# A message's topic is a name: a wildcard is refused (one shot: usage error; batch: an input error).
p = subprocess.run([BIN, "eval", "--sql", "SELECT 1 AS x FROM 'a/#'", "--topic", "a/#", "--payload", "{}"],
                   capture_output=True, text=True, timeout=60)
check("wildcard topic refused", p.returncode == 64 and "a message's topic is a name" in p.stderr,
      f"{p.returncode} {p.stderr}")
p = subprocess.run([BIN, "eval", "--batch", "-"], capture_output=True, text=True, timeout=60,
                   input=json.dumps({"sql": "SELECT 1 AS x FROM 'a/#'", "topic": "a/+", "payload": {}}) + "\n")
answer = json.loads(p.stdout.splitlines()[0]) if p.stdout.strip() else {}
check("wildcard topic in batch", answer.get("error", {}).get("kind") == "input"
      and "wildcard" in answer["error"].get("message", ""), p.stdout + p.stderr)

p = subprocess.run([BIN, "eval", "--batch", "-"], capture_output=True, text=True, timeout=60,
                   input=json.dumps({"sql": "SELECT get_mqtt_property('content_type') AS c FROM 't'", "topic": "t",
                                     "payload": {}, "context": {"mqtt_properties": {"contentType": "x"}}}) + "\n"
                   + json.dumps({"sql": "SELECT get_mqtt_property('content_type') AS c FROM 't'", "topic": "t",
                                 "payload": {}, "context": {"mqtt_properties": {"content_type": "x"}}}) + "\n")
answers = [json.loads(line) for line in p.stdout.splitlines()]
check("misspelt MQTT property refused", len(answers) == 2 and answers[0].get("error", {}).get("kind") == "input"
      and "contentType" in answers[0]["error"]["message"] and answers[1].get("payload") == '{"c":"x"}', p.stdout)

# A batch line carries its own version, client id and template: the one-shot options would be
# silently ignored, so they are refused.
for option in (["--sql-version", "2015-10-08"], ["--client-id", "zz"], ["--template", "x"]):
    p = subprocess.run([BIN, "eval", "--batch", "-", *option], capture_output=True, text=True, timeout=60,
                       input=json.dumps({"sql": "SELECT 2.0 AS a FROM 't'", "topic": "t", "payload": {}}) + "\n")
    check(f"batch refuses {option[0]}", p.returncode == 64 and option[0] in p.stderr and p.stdout == "",
          f"{p.returncode} {p.stdout} {p.stderr}")

# An optional field written as null is absent (a serializer that writes every field), in the
# request and in its context; a misspelt one is refused still.
answers = batch([
    {"sql": "SELECT 2.0 AS a, clientid() AS c, timestamp() AS t FROM 't'", "topic": "t", "payload": {},
     "payload_base64": None, "sql_version": None, "template": None,
     "context": {"timestamp_ms": 5, "mqtt_properties": {"content_type": None}, "user_properties": None,
                 "clientid": None}},
    {"sql": "SELECT 1 AS a FROM 't'", "topic": "t", "payload": {}, "context": None},
    {"sql": "SELECT 1 AS a FROM 't'", "topic": "t", "payload": {}, "context": {"timestamp": None}},
])
check("null optional fields are absent", len(answers) == 3
      and answers[0] == {"match": True, "payload": '{"a":2,"c":"n/a","t":5}'}
      and answers[1] == {"match": True, "payload": '{"a":1}'}
      and "unknown context field \"timestamp\"" in answers[2].get("error", {}).get("message", ""), answers)
# U+2028, U+2029 and U+0085 are escaped in an answer: one line to a reader that splits on every
# Unicode line break, and the same payload once decoded.
p = subprocess.run([BIN, "eval", "--batch", "-"], capture_output=True, text=True, timeout=60,
                   input=json.dumps({"sql": "SELECT a FROM 't'", "topic": "t", "payload": {"a": "x\u2028y\u0085z\u2029"}},
                                    ensure_ascii=False) + "\n"
                   + json.dumps({"sql": "SELECT 1 AS n FROM 't'", "topic": "t", "payload": {}}) + "\n")
lines = p.stdout.splitlines()
check("line breaks escaped in answers", len(lines) == 2
      and json.loads(lines[0]) == {"match": True, "payload": '{"a":"x\u2028y\u0085z\u2029"}'}
      and "\\u2028" in lines[0], repr(p.stdout))
p = subprocess.run([BIN, "eval", "--batch", "-"], capture_output=True, text=True, timeout=60,
                   input=json.dumps({"sql": "SELECT * FROM 'a'", "topic": "a", "payload": {"x": 1},
                                     "payload_base64": "AAEC"}) + "\n")
answer = json.loads(p.stdout.splitlines()[0]) if p.stdout.strip() else {}
check("payload and payload_base64 in batch", answer.get("error", {}).get("kind") == "input"
      and "give one" in answer["error"].get("message", ""), p.stdout + p.stderr)

# payload_base64 is RFC 4648 base64 in groups of four: text that is not base64 is an input error, not
# bytes made up from it (Foundation's decoder took "====" as one zero byte and "aG=k" as "h$").
answers = batch([{"sql": "SELECT * FROM 'a'", "topic": "a", "payload_base64": text}
                 for text in ["====", "aG=k", "aGVsbG8==", "aGk=", ""]])
check("payload_base64 that is not base64",
      [a.get("error", {}).get("kind") for a in answers[:3]] == ["input"] * 3
      and answers[3].get("payload") == "hi" and answers[4].get("match") is True, answers)

# A long request line is read in one pass (it was scanned again after every 64 KiB: 43 s for 64 MiB);
# one longer than 16 MiB is answered with an input error and the batch goes on.
answers = batch([
    {"sql": "SELECT length(s) AS n FROM 't'", "topic": "t", "payload": {"s": "x" * (12 << 20)}},
    {"sql": "SELECT 1 AS one FROM 't'", "topic": "t", "payload": {"s": "x" * (17 << 20)}},
    {"sql": "SELECT 2 AS two FROM 't'", "topic": "t", "payload": {}},
])
check("long batch lines", len(answers) == 3 and json.loads(answers[0]["payload"]) == {"n": 12 << 20}
      and answers[1].get("error", {}).get("message") == "the request line is longer than 16 MiB"
      and json.loads(answers[2]["payload"]) == {"two": 2}, str(answers)[:300])

# The bound is exact whatever the reads: from a file (reads of 64 KiB), a line of 16 MiB + 1 byte whose
# newline comes in the read that takes it past the bound is refused (it was answered), one of 16 MiB is
# answered.
def sized_request(size, name):
    head = json.dumps({"sql": f"SELECT 3 AS {name} FROM 't'", "topic": "t", "payload": {"s": ""}})
    line = head[:-3] + "x" * (size - len(head)) + head[-3:]
    assert len(line) == size
    return line
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "sized.jsonl")
    with open(path, "w") as f:
        f.write(sized_request(16 << 20, "exact") + "\n" + sized_request((16 << 20) + 1, "over") + "\n"
                + json.dumps({"sql": "SELECT 4 AS after FROM 't'", "topic": "t", "payload": {}}) + "\n"
                # A CR LF line's CR is no part of it: 16 MiB then CR LF is answered.
                + sized_request(16 << 20, "crlf") + "\r\n" + sized_request((16 << 20) + 1, "over") + "\r\n")
    p = subprocess.run([BIN, "eval", "--batch", path], capture_output=True, text=True, timeout=120)
    answers = [json.loads(line) for line in p.stdout.splitlines()]
    check("batch line bound is exact", len(answers) == 5 and answers[0].get("payload") == '{"exact":3}'
          and answers[1].get("error", {}).get("message") == "the request line is longer than 16 MiB"
          and answers[2].get("payload") == '{"after":4}' and answers[3].get("payload") == '{"crlf":3}'
          and answers[4].get("error", {}).get("message") == "the request line is longer than 16 MiB",
          str(answers)[:300])

# A UTF-8 byte order mark before the first request (Windows tools write one) is skipped.
p = subprocess.run([BIN, "eval", "--batch", "-"], capture_output=True, timeout=60,
                   input=b"\xef\xbb\xbf" + json.dumps({"sql": "SELECT 1 AS one FROM 't'", "topic": "t", "payload": {}}).encode() + b"\n")
check("batch byte order mark", p.stdout.decode().strip() == json.dumps({"match": True, "payload": '{"one":1}'}, separators=(",", ":")),
      p.stdout.decode() + p.stderr.decode())

# ... also when it arrives split across reads (it crashed the batch reader).
import time
proc = subprocess.Popen([BIN, "eval", "--batch", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
proc.stdin.write(b"\xef\xbb")
proc.stdin.flush()
time.sleep(0.3)
proc.stdin.write(b"\xbf")
proc.stdin.flush()
time.sleep(0.3)
proc.stdin.write(json.dumps({"sql": "SELECT 2 AS two FROM 't'", "topic": "t", "payload": {}}).encode() + b"\n")
out, err = proc.communicate(timeout=60)
check("batch byte order mark split across reads", proc.returncode == 0 and
      out.decode().strip() == json.dumps({"match": True, "payload": '{"two":2}'}, separators=(",", ":")),
      f"{proc.returncode} {out.decode()} {err.decode()[-300:]}")

# ... and at the start of any later line (files joined with `cat`): the request was refused with
# "cannot locate the "payload" member".
p = subprocess.run([BIN, "eval", "--batch", "-"], capture_output=True, timeout=60,
                   input=b"".join(b"\xef\xbb\xbf" + json.dumps({"sql": f"SELECT {n} AS n FROM 't'", "topic": "t",
                                                                 "payload": {"x": n}}).encode() + b"\n" for n in (1, 2)))
check("batch byte order mark on a later line",
      [json.loads(line) for line in p.stdout.decode().splitlines()] == [{"match": True, "payload": '{"n":1}'},
                                                                         {"match": True, "payload": '{"n":2}'}],
      p.stdout.decode() + p.stderr.decode())

# A --payload whose bytes are not UTF-8 is Binary, as in the daemon (it became valid JSON with U+FFFD).
p = subprocess.run([BIN, "eval", "--sql", "SELECT a FROM 't'", "--topic", "t", "--payload", b'{"a":"\xff"}'],
                   capture_output=True, timeout=60)
check("eval --payload not UTF-8", p.returncode == 0 and p.stdout.strip() == b"{}" and b"not JSON" in p.stderr,
      f"{p.returncode} {p.stdout!r} {p.stderr!r}")
# A --sql or --template that is not UTF-8 is refused, saying where (it ran with U+FFFD).
for option, value in (("--sql", b"SELECT '\xc3\x28' AS x FROM 't'"), ("--template", b"a/\xff")):
    arguments = {"--sql": b"SELECT 1 AS x FROM 't'", "--template": None}
    arguments[option] = value
    command = [BIN, "eval", "--topic", "t", "--sql", arguments["--sql"]]
    if arguments["--template"] is not None:
        command += ["--template", arguments["--template"]]
    p = subprocess.run(command, capture_output=True, timeout=60)
    offset = value.index(b"\xc3\x28") if option == "--sql" else 2
    check(f"eval {option} not UTF-8", p.returncode == 65 and
          f"{option} is not UTF-8 text (byte 0x{value[offset]:X} at offset {offset})".encode() in p.stderr,
          f"{p.returncode} {p.stderr!r}")

# An endless input file is refused once 16 MiB are read (it aborted, out of memory).
for arguments in (["eval", "--sql", "SELECT * FROM 'a'", "--payload-file", "/dev/zero"], ["import", "aws", "/dev/zero"]):
    p = subprocess.run([BIN] + arguments, capture_output=True, text=True, timeout=60)
    check(f"endless input: {' '.join(arguments[:2])}",
          p.returncode == 65 and "/dev/zero: longer than 16 MiB, the most read" in p.stderr, f"{p.returncode} {p.stderr}")

# An import whose rule file would pass 1 MiB writes nothing (check and run refuse such a file).
import tempfile
with tempfile.TemporaryDirectory() as folder:
    source = os.path.join(folder, "big.json")
    with open(source, "w") as f:
        json.dump({"ruleName": "big", "topicRulePayload": {"sql": "SELECT * FROM 'a'", "description": "x" * (2 << 20),
                                                            "actions": []}}, f)
    p = subprocess.run([BIN, "import", "aws", source, "-o", os.path.join(folder, "out")], capture_output=True,
                       text=True, timeout=60)
    check("import of a rule over 1 MiB", p.returncode == 65 and "a rule file is at most 1048576 bytes" in p.stderr
          and not os.path.exists(os.path.join(folder, "out", "big.json")), f"{p.returncode} {p.stderr[-300:]}")

# eval --template reads no secret, as the REPL and rule tests: get_secret shows as *** (it rendered
# as nothing, without a word).
p = subprocess.run([BIN, "eval", "--sql", "SELECT 1 AS a FROM 't'", "--topic", "t", "--template",
                    "x/${get_secret('tok')}/${topic()}"], capture_output=True, text=True, timeout=60,
                   env={**os.environ, "IOTRULES_SECRET_TOK": "s3cret"})
check("eval --template with a secret", p.returncode == 0 and "template: x/***/t" in p.stderr
      and "s3cret" not in p.stderr + p.stdout, f"{p.returncode} {p.stderr}")

# eval --template warns as `check` does of the same template in a rule: a name the SELECT computes
# is read from the message (it rendered empty without a word), a topic level the FROM never has.
p = subprocess.run([BIN, "eval", "--sql", "SELECT deviceId AS dev FROM 'a/b'", "--topic", "a/b", "--payload",
                    '{"deviceId": "d1"}', "--template", "r/${dev}/${topic(3)}"], capture_output=True, text=True,
                   timeout=60)
check("eval --template warns", p.returncode == 0
      and "template: 1:5: warning: the template reads the incoming message's 'dev', not the SELECT's 'dev'" in p.stderr
      and "template: 1:12: warning: topic(3) is always Undefined: FROM 'a/b' matches topics of 2 levels only"
      in p.stderr and "template: r//" in p.stderr, f"{p.returncode} {p.stderr}")

# An input file that cannot be read: exit 74 in every command, naming the file.
missing = "/nonexistent-iotrules-input.json"
for arguments in (["eval", "--sql", "SELECT * FROM 'a'", "--payload-file", missing], ["eval", "--batch", missing],
                  ["explain", missing], ["check", missing], ["test", missing], ["import", "aws", missing]):
    p = subprocess.run([BIN] + arguments, capture_output=True, text=True, timeout=60)
    check(f"unreadable input: {' '.join(arguments[:2])}",
          p.returncode == 74 and f"{missing}: no such file or folder" in p.stderr, f"{p.returncode} {p.stderr}")

# `explain` of a rule's test file names the rule file to give (it said a rule file holds an object).
p = subprocess.run([BIN, "explain", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../Rules/high_temp.test.json")],
                   capture_output=True, text=True, timeout=60)
check("explain: a test file", p.returncode == 64 and "is a rule test file: explain its rule file (" in p.stderr
      and "high_temp.json)" in p.stderr, f"{p.returncode} {p.stderr}")
# A YAML rule's test file names the YAML file; a test file that is not there is a missing input (74).
with tempfile.TemporaryDirectory() as folder:
    with open(os.path.join(folder, "r.yaml"), "w") as f:
        f.write("sql: SELECT * FROM 'a'\nactions: []\n")
    with open(os.path.join(folder, "r.test.yaml"), "w") as f:
        f.write("cases: []\n")
    p = subprocess.run([BIN, "explain", os.path.join(folder, "r.test.yaml")], capture_output=True, text=True, timeout=60)
    check("explain: a YAML rule's test file", p.returncode == 64 and "(" + os.path.join(folder, "r.yaml") + ")" in p.stderr,
          f"{p.returncode} {p.stderr}")
    p = subprocess.run([BIN, "explain", os.path.join(folder, "gone.test.json")], capture_output=True, text=True, timeout=60)
    check("explain: a missing test file", p.returncode == 74 and "no such file" in p.stderr, f"{p.returncode} {p.stderr}")
# `.explain ;` explains nothing of its own: the last statement, or says there is none.
p = subprocess.run([BIN, "repl"], input=".explain ;\n", capture_output=True, text=True, timeout=60)
check("repl: .explain ;", p.returncode == 65 and "nothing to explain" in p.stderr, f"{p.returncode} {p.stderr}")

# A disabled rule is valid, and `check` says it is disabled (it said only "ok").
with tempfile.TemporaryDirectory() as work:
    with open(os.path.join(work, "dis.json"), "w") as f:
        f.write('{"sql": "SELECT * FROM \'a\'", "ruleDisabled": true, "actions": [{"file": {"path": "o.jsonl"}}]}')
    p = subprocess.run([BIN, "check", os.path.join(work, "dis.json")], capture_output=True, text=True, timeout=60)
    check("check: a disabled rule says so", p.returncode == 0
          and "ok (rule dis, disabled: run loads it and skips it)" in p.stdout, f"{p.returncode} {p.stdout}")

# `test` with one path missing runs the others' tests, says the missing one, and exits 74 (it ran
# nothing at all).
p = subprocess.run([BIN, "test", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../Rules"), missing],
                   capture_output=True, text=True, timeout=60)
check("test: a missing path beside others", p.returncode == 74 and " passed, 0 failed" in p.stdout
      and f"{missing}: no such file or folder" in p.stderr, f"{p.returncode} {p.stdout} {p.stderr}")

# A folder where a file is expected: the same, no crash.
folder = os.path.dirname(os.path.abspath(__file__))
for arguments in (["eval", "--sql", "SELECT * FROM 'a'", "--payload-file", folder], ["eval", "--batch", folder],
                  ["explain", folder]):
    p = subprocess.run([BIN] + arguments, capture_output=True, text=True, timeout=60)
    check(f"folder as input: {' '.join(arguments[:2])}",
          p.returncode == 74 and f"{folder}: is a folder, not a file" in p.stderr, f"{p.returncode} {p.stderr}")

# A payload from standard input (`-`, /dev/stdin) or a pipe, as the README's "any bytes" says.
for source in ("-", "/dev/stdin"):
    p = subprocess.run([BIN, "eval", "--sql", "SELECT * FROM 'a'", "--topic", "a", "--payload-file", source],
                       input='{"p": 1}', capture_output=True, text=True, timeout=60)
    check(f"payload file {source}", p.returncode == 0 and p.stdout.strip() == '{"p":1}', f"{p.returncode} {p.stdout}{p.stderr}")

# The batch protocol answers each request as it arrives: a tool writes one line and waits for its
# answer (reading up to 64 KiB before answering deadlocked it).
import select
p = subprocess.Popen([BIN, "eval", "--batch", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
p.stdin.write(b'{"sql": "SELECT 1 AS a FROM \'x\'", "topic": "x", "payload": {}}\n')
p.stdin.flush()
ready, _, _ = select.select([p.stdout], [], [], 20)
check("batch answers before its input ends", bool(ready) and json.loads(p.stdout.readline()) == {
    "match": True, "payload": '{"a":1}'})
p.stdin.close()
p.wait(timeout=20)

# check: a rule's test file named checks its rule, whose check runs its tests (pre-commit names the
# files changed): beside another path it was left out without a word, and a failing case passed.
tests_only = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Rules", "high_temp.test.json")
p = subprocess.run([BIN, "check", tests_only], capture_output=True, text=True, timeout=60)
check("check of a test file alone checks its rule", p.returncode == 0 and "high_temp.json: ok (rule high_temp)"
      in p.stdout, f"{p.returncode} {p.stdout} {p.stderr}")
changed = tempfile.mkdtemp()
with open(os.path.join(changed, "r.json"), "w") as f:
    json.dump({"sql": "SELECT 1 AS t FROM 't'", "actions": []}, f)
with open(os.path.join(changed, "r.test.json"), "w") as f:
    json.dump([{"name": "two", "topic": "t", "expect": {"output": {"t": 2}}}], f)
with open(os.path.join(changed, "other.json"), "w") as f:
    json.dump({"sql": "SELECT 1 AS t FROM 't'", "actions": []}, f)
p = subprocess.run([BIN, "check", os.path.join(changed, "other.json"), os.path.join(changed, "r.test.json")],
                   capture_output=True, text=True, timeout=60)
check("check of a changed test file beside another path runs it", p.returncode == 65
      and "test 'two' of rule 'r' failed" in p.stdout and "1 valid, 1 invalid" in p.stdout, f"{p.returncode} {p.stdout}")
os.remove(os.path.join(changed, "r.json"))
p = subprocess.run([BIN, "check", "--skip-tests", os.path.join(changed, "r.test.json")], capture_output=True, text=True,
                   timeout=60)
check("check of a test file without its rule", p.returncode == 66 and "r.test.json is a rule test file: name its rule file"
      in p.stderr, f"{p.returncode} {p.stderr}")
shutil.rmtree(changed, ignore_errors=True)

# run: --metrics-address takes an IPv4 address, and says so for anything else (exit 64).
p = subprocess.run([BIN, "run", "--rules", "Rules", "--source", "file:Rules/samples/sensors.jsonl", "--metrics-port", "0",
                    "--metrics-address", "localhost"], capture_output=True, text=True, timeout=60)
check("--metrics-address refuses a host name", p.returncode == 64 and "--metrics-address is an IPv4 address" in p.stderr,
      f"{p.returncode} {p.stderr}")

# run: replaying the dead-letter file into itself is refused (records failing again would be appended
# to the file being read), by path and by another name of the same file.
import tempfile
with tempfile.TemporaryDirectory() as loop:
    dead = os.path.join(loop, "dead-letter.jsonl")
    with open(dead, "w") as f:
        f.write('{"topic": "a", "payload": {}}\n')
    os.link(dead, os.path.join(loop, "copy.jsonl"))
    for source in (dead, os.path.join(loop, "copy.jsonl")):
        p = subprocess.run([BIN, "run", "--rules", "Rules", "--source", "file:" + source, "--dead-letter", dead],
                           capture_output=True, text=True, timeout=60)
        check("run refuses the dead-letter file as its source", p.returncode == 64 and "is the dead-letter file" in p.stderr,
              f"{p.returncode} {p.stderr}")
    with open(dead) as standard_input:
        p = subprocess.run([BIN, "run", "--rules", "Rules", "--source", "-", "--dead-letter", dead], stdin=standard_input,
                           capture_output=True, text=True, timeout=60)
    check("run refuses the dead-letter file as standard input", p.returncode == 64
          and "--source - (standard input) is the dead-letter file" in p.stderr, f"{p.returncode} {p.stderr}")

# check: an empty path beside others still prints the others' results (exit 66 comes after them).
import tempfile
with tempfile.TemporaryDirectory() as work:
    os.makedirs(os.path.join(work, "empty"))
    with open(os.path.join(work, "bad.json"), "w") as f:
        f.write('{"sql": "SELECT FROM \'a\'", "actions": []}')
    p = subprocess.run([BIN, "check", "--format", "json", os.path.join(work, "bad.json"), os.path.join(work, "empty")],
                       capture_output=True, text=True, timeout=60)
    check("check prints results beside an empty path", p.returncode == 66 and "bad.json" in p.stdout
          and "no rule files" in p.stderr, f"{p.returncode} {p.stdout} {p.stderr}")
    # In JSON the empty path is a result of its own, invalid (a tool reading "invalid" must not pass
    # it), and every diagnostic says its severity.
    document = json.loads(p.stdout) if p.stdout else {}
    empty_results = [f for f in document.get("files", []) if f["file"].endswith("empty")]
    check("check lists an empty path in JSON", document.get("invalid") == 2 and len(empty_results) == 1
          and empty_results[0]["errors"][0]["severity"] == "error"
          and "no rule files" in empty_results[0]["errors"][0]["message"], p.stdout)
    # The text summary counts the empty path too, as JSON does: never "0 invalid" with one.
    p = subprocess.run([BIN, "check", os.path.join(work, "empty")], capture_output=True, text=True, timeout=60)
    check("check's text summary counts an empty path", p.returncode == 66
          and p.stdout.strip().endswith("0 valid, 1 invalid"), f"{p.returncode} {p.stdout} {p.stderr}")
    # A path that does not exist is a result of its own, in JSON too (exit 74): the others are still
    # checked (nothing was printed on stdout before).
    missing = os.path.join(work, "nope")
    p = subprocess.run([BIN, "check", "--format", "json", os.path.join(work, "bad.json"), missing],
                       capture_output=True, text=True, timeout=60)
    files = [f["file"] for f in json.loads(p.stdout)["files"]] if p.stdout else []
    check("check reports a missing path beside the others", p.returncode == 74 and files[-1:] == [missing]
          and any(f.endswith("bad.json") for f in files), f"{p.returncode} {p.stdout} {p.stderr}")
    # A control character in a key is spelled out in the text output (an escape sequence or NUL must
    # not reach the terminal or the CI log raw); JSON escapes it anyway.
    with open(os.path.join(work, "ctl.json"), "w") as f:
        f.write('{"sql": "SELECT 1 AS a FROM \'a\'", "actions": [], "bo\\u001b[2Jgus": 1}')
    p = subprocess.run([BIN, "check", os.path.join(work, "ctl.json")], capture_output=True, text=True, timeout=60)
    check("check spells out control characters", p.returncode == 65 and "unknown key 'bo\\u001B[2Jgus'" in p.stdout
          and "\x1b" not in p.stdout, f"{p.returncode} {p.stdout!r}")
    # A line break in a setting's value quoted by an action's error stays spelled out: one line.
    with open(os.path.join(work, "hdr.json"), "w") as f:
        f.write('{"sql": "SELECT 1 AS a FROM \'a\'", "actions": [{"http": {"url": "http://127.0.0.1:9/x", '
                '"headers": [{"key": "X-A\\r\\nInjected", "value": "v"}]}}]}')
    p = subprocess.run([BIN, "check", os.path.join(work, "hdr.json")], capture_output=True, text=True, timeout=60)
    check("check keeps an action error with a line break on one line", p.returncode == 65
          and "'X-A\\u000D\\u000AInjected' is not a valid header name" in p.stdout
          and len(p.stdout.splitlines()) == 2, f"{p.returncode} {p.stdout!r}")
    # Rule files in a subfolder are not read (as by run): said, so that CI does not pass them unchecked.
    os.makedirs(os.path.join(work, "rules", "team_a"))
    with open(os.path.join(work, "rules", "team_a", "bad.json"), "w") as f:
        f.write('{"sql": "SELECT FROM \'a\'", "actions": []}')
    with open(os.path.join(work, "rules", "good.json"), "w") as f:
        f.write('{"sql": "SELECT 1 AS a FROM \'a\'", "actions": []}')
    p = subprocess.run([BIN, "check", os.path.join(work, "rules")], capture_output=True, text=True, timeout=60)
    check("check notes rule files in subfolders", p.returncode == 0
          and "team_a holds 1 *.json/*.yaml file(s), not read" in p.stderr, f"{p.returncode} {p.stdout} {p.stderr}")
    # The same folder named twice is noted once.
    p = subprocess.run([BIN, "check", "rules", "./rules"], capture_output=True, text=True, timeout=60, cwd=work)
    check("a folder named twice is noted once", p.returncode == 0 and p.stderr.count("team_a holds") == 1,
          f"{p.returncode} {p.stdout} {p.stderr}")
    # A file named as a rule file but for the case of its ending is not read: said too.
    with open(os.path.join(work, "rules", "Upper.JSON"), "w") as f:
        f.write('{"sql": "SELECT FROM \'a\'", "actions": []}')
    p = subprocess.run([BIN, "check", os.path.join(work, "rules")], capture_output=True, text=True, timeout=60)
    check("check notes a rule file's ending in upper case", p.returncode == 0
          and "holds 1 file(s) named as rule files but for the case of their ending (Upper.JSON), not read"
          in p.stderr, f"{p.returncode} {p.stdout} {p.stderr}")
    os.remove(os.path.join(work, "rules", "Upper.JSON"))
    # A subfolder named too is read, not noted as unread (however it is spelt).
    p = subprocess.run([BIN, "check", ".", "team_a/"], capture_output=True, text=True, timeout=60,
                       cwd=os.path.join(work, "rules"))
    check("check does not note a subfolder it was given", p.returncode == 65 and "bad.json" in p.stdout
          and "note:" not in p.stderr, f"{p.returncode} {p.stdout} {p.stderr}")
    feed = os.path.join(work, "one.jsonl")
    with open(feed, "w") as f:
        f.write('{"topic": "a", "payload": {}}\n')
    p = subprocess.run([BIN, "run", "--rules", os.path.join(work, "rules"), "--source", "file:" + feed,
                        "--dead-letter", os.path.join(work, "dead.jsonl")], capture_output=True, text=True, timeout=60)
    check("run notes rule files in subfolders too", p.returncode == 0
          and "team_a holds 1 *.json/*.yaml file(s), not read" in p.stderr, f"{p.returncode} {p.stdout} {p.stderr}")
    # A character that shows as nothing is spelled out in a key; a typographic quote is named.
    with open(os.path.join(work, "zw.json"), "w", encoding="utf-8") as f:
        f.write('{"sql\u200b": "SELECT 1 AS a FROM \'a\'", "actions": []}')
    with open(os.path.join(work, "tq.json"), "w", encoding="utf-8") as f:
        f.write('{\u201csql\u201d: "SELECT 1 AS a FROM \'a\'", "actions": []}')
    p = subprocess.run([BIN, "check", os.path.join(work, "zw.json"), os.path.join(work, "tq.json")],
                       capture_output=True, text=True, timeout=60)
    check("check spells out invisible and typographic characters", p.returncode == 65
          and "zw.json:1:2: error: unknown key 'sql\\u200B'" in p.stdout
          and "tq.json:1:2: error: expected a key string, found '\u201c' (U+201C), a typographic quote" in p.stdout,
          f"{p.returncode} {p.stdout}")
    # A Basic Ingest topic that names no rule, or is no $aws/rules/<rule>/<topic>, is logged, not dropped in silence.
    os.makedirs(os.path.join(work, "ingest"))
    with open(os.path.join(work, "ingest", "bi.json"), "w") as f:
        f.write('{"sql": "SELECT 1 AS a", "actions": [{"file": {"path": "bi.jsonl"}}]}')
    ingest_feed = os.path.join(work, "ingest.jsonl")
    with open(ingest_feed, "w") as f:
        for topic in ("$aws/rules/bi", "$aws/rules//x", "$aws/rules/nope/x", "$aws/rules/bi/x"):
            f.write(json.dumps({"topic": topic, "payload": {}}) + "\n")
    p = subprocess.run([BIN, "run", "--rules", os.path.join(work, "ingest"), "--source", "file:" + ingest_feed,
                        "--dead-letter", os.path.join(work, "dead.jsonl")], capture_output=True, text=True,
                       timeout=60, cwd=work)
    check("run logs Basic Ingest topics that reach no rule", p.returncode == 0
          and "Basic Ingest topic '$aws/rules/bi' is not $aws/rules/<rule>/<topic>" in p.stderr
          and "Basic Ingest topic '$aws/rules//x' is not $aws/rules/<rule>/<topic>" in p.stderr
          and "Basic Ingest topic '$aws/rules/nope/x' names no rule 'nope'" in p.stderr
          and "1 rule result" in p.stdout, f"{p.returncode} {p.stdout} {p.stderr}")
    # run logs a broken rule's warnings among its errors, in file order, as check shows them.
    os.makedirs(os.path.join(work, "warned"))
    with open(os.path.join(work, "warned", "wr.json"), "w") as f:
        f.write('{"sql": "SELECT temp * 1.8 + 32 AS temp FROM \'a\'",\n "actions": [\n'
                '   {"file": {"path": "out/${temp}.jsonl", "fsync": "sometimes"}}]}')
    p = subprocess.run([BIN, "run", "--rules", os.path.join(work, "warned"), "--source", "file:" + feed,
                        "--dead-letter", os.path.join(work, "dead.jsonl")], capture_output=True, text=True, timeout=60)
    warned = p.stderr.find("wr.json:3:29: warning: the template reads the incoming message's 'temp'")
    failed = p.stderr.find("wr.json:3:52: error: file action: 'fsync' must be")
    check("run logs a broken rule's warnings beside its errors", p.returncode == 65 and 0 <= warned < failed,
          f"{p.returncode} {p.stderr}")
    # A path of 40,000 template parts is judged in one walk (each part walked the text from its
    # start: 97 s), and a rule of thousands of actions is refused without judging them all.
    with open(os.path.join(work, "parts.json"), "w") as f:
        json.dump({"sql": "SELECT * FROM 'z/z'", "actions": [{"file": {"root": "o", "path": "${x}" * 40_000}}]}, f)
    p = subprocess.run([BIN, "check", os.path.join(work, "parts.json")], capture_output=True, text=True, timeout=60)
    check("check walks a long template once", p.returncode == 0 and "1 valid" in p.stdout, f"{p.returncode} {p.stdout}")
    with open(os.path.join(work, "many_actions.json"), "w") as f:
        json.dump({"sql": "SELECT * FROM 'z/z'", "actions": [{"file": {"path": "o/x.jsonl"}}] * 30_000}, f)
    p = subprocess.run([BIN, "check", os.path.join(work, "many_actions.json")], capture_output=True, text=True,
                       timeout=60)
    check("check refuses 30,000 actions, judging 100", p.returncode == 65
          and "a rule has at most 10 actions, this one has 30000 (the first 100 are checked)" in p.stdout,
          f"{p.returncode} {p.stdout[:300]}")
    # --max-line-bytes: a replay's longest line (the error record of a large payload is longer than
    # the default allows); a longer one is skipped, saying the option.
    long_feed = os.path.join(work, "long.jsonl")
    with open(long_feed, "w") as f:
        f.write('{"topic": "a", "payload": {"pad": "' + "x" * 2000 + '"}}\n{"topic": "a", "payload": {}}\n')
    p = subprocess.run([BIN, "run", "--rules", os.path.join(work, "rules"), "--source", "file:" + long_feed,
                        "--dead-letter", os.path.join(work, "dead.jsonl"), "--max-line-bytes", "1K"],
                       capture_output=True, text=True, timeout=60)
    check("--max-line-bytes skips a longer line, saying the option", p.returncode == 0
          and "1 message (1 malformed)" in p.stdout and "line longer than 1024 bytes (--max-line-bytes); skipped"
          in p.stderr, f"{p.returncode} {p.stdout} {p.stderr}")
    p = subprocess.run([BIN, "run", "--rules", os.path.join(work, "rules"), "--source", "file:" + long_feed,
                        "--dead-letter", os.path.join(work, "dead.jsonl"), "--max-line-bytes", "4k"],
                       capture_output=True, text=True, timeout=60)
    check("--max-line-bytes takes a longer line", p.returncode == 0 and "2 messages (0 malformed)" in p.stdout,
          f"{p.returncode} {p.stdout} {p.stderr}")
    p = subprocess.run([BIN, "run", "--rules", os.path.join(work, "rules"), "--source", "file:" + long_feed,
                        "--max-line-bytes", "0"], capture_output=True, text=True, timeout=60)
    check("--max-line-bytes 0 is refused", p.returncode == 64 and "--max-line-bytes takes a positive" in p.stderr,
          f"{p.returncode} {p.stdout} {p.stderr}")
    # test reads a folder as check does: a subfolder of rules and tests is named, not a bare "none found".
    tests_only = os.path.join(work, "tests_only")
    os.makedirs(os.path.join(tests_only, "team_b"))
    with open(os.path.join(tests_only, "team_b", "t.json"), "w") as f:
        f.write('{"sql": "SELECT 1 AS a FROM \'a\'", "actions": []}')
    with open(os.path.join(tests_only, "team_b", "t.test.json"), "w") as f:
        f.write('[{"name": "one", "topic": "a", "payload": {}, "expect": {"output": {"a": 1}}}]')
    p = subprocess.run([BIN, "test", tests_only], capture_output=True, text=True, timeout=60)
    check("test notes rule files in subfolders", p.returncode == 65 and "no rule tests found" in p.stderr
          and "team_b holds 1 *.json/*.yaml file(s), not read" in p.stderr, f"{p.returncode} {p.stdout} {p.stderr}")
    # --warnings-as-errors: a rule without actions is valid with a warning (exit 0), else invalid (65).
    with open(os.path.join(work, "quiet.json"), "w") as f:
        f.write('{"sql": "SELECT 1 AS a FROM \'a\'", "actions": []}')
    quiet = os.path.join(work, "quiet.json")
    p = subprocess.run([BIN, "check", quiet], capture_output=True, text=True, timeout=60)
    strict = subprocess.run([BIN, "check", "--warnings-as-errors", quiet], capture_output=True, text=True, timeout=60)
    strict_json = subprocess.run([BIN, "check", "--warnings-as-errors", "--format", "json", quiet], capture_output=True,
                                 text=True, timeout=60)
    document = json.loads(strict_json.stdout) if strict_json.stdout else {}
    check("check --warnings-as-errors", p.returncode == 0 and "warning: " in p.stdout and strict.returncode == 65
          and "quiet.json:1:" in strict.stdout and "error: " in strict.stdout and "0 valid, 1 invalid" in strict.stdout
          and strict_json.returncode == 65 and document.get("invalid") == 1
          and document["files"][0]["warnings"] == [] and len(document["files"][0]["errors"]) == 1,
          f"{p.stdout} | {strict.returncode} {strict.stdout} | {strict_json.stdout}")
    # A file that cannot be read says why and exits 74, as every command does (it said "cannot read
    # the file" and exited 65).
    if os.geteuid() == 0:
        os.chmod(work, 0o755)
        locked = os.path.join(work, "locked.json")
        with open(locked, "w") as f:
            f.write('{"sql": "SELECT 1 AS a FROM \'a\'", "actions": []}')
        os.chmod(locked, 0)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BIN, "check", locked],
                           capture_output=True, text=True, timeout=60)
        check("check of an unreadable file", p.returncode == 74 and "cannot read it (Permission denied)" in p.stdout,
              f"{p.returncode} {p.stdout} {p.stderr}")
        # A folder that cannot be listed: said in the system's words, and the other paths still checked
        # (it was a raw Foundation error, and nothing else was checked).
        closed = os.path.join(work, "closed")
        os.makedirs(closed)
        os.chmod(closed, 0)
        good = os.path.join(work, "good.json")
        with open(good, "w") as f:
            f.write('{"sql": "SELECT 1 AS a FROM \'a\'", "actions": []}')
        os.chmod(good, 0o644)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BIN, "check", "--format",
                            "json", closed, good], capture_output=True, text=True, timeout=60)
        try:
            files = {f["file"]: f for f in json.loads(p.stdout)["files"]}
        except ValueError:
            files = {}
        check("check of an unreadable folder", p.returncode == 74 and files.get(good, {}).get("valid") is True
              and "cannot read it (Permission denied)" in json.dumps(files.get(closed, {}))
              and "NSCocoaErrorDomain" not in p.stderr, f"{p.returncode} {p.stdout} {p.stderr}")
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BIN, "test", closed],
                           capture_output=True, text=True, timeout=60)
        check("test of an unreadable folder", p.returncode == 74 and f"{closed}: cannot read it (Permission denied)"
              in p.stderr, f"{p.returncode} {p.stdout} {p.stderr}")
        # A file action, or error action, where this user may not write fails every result: check says
        # so, as it does of a SQLite database (it passed the rule, and run sent every result down the
        # error path). A root holding a folder made beforehand may still take files: not judged.
        archive = os.path.join(work, "archive")
        os.makedirs(os.path.join(archive, "rules"))
        os.makedirs(os.path.join(archive, "ro"))
        os.makedirs(os.path.join(archive, "made", "dev-1"))
        with open(os.path.join(archive, "rules", "a.json"), "w") as f:
            f.write('{"sql": "SELECT * FROM \'f/+\'", "actions": [{"file": {"root": "ro", "path": "${topic(2)}.jsonl"}},\n'
                    ' {"file": {"root": "made", "path": "${topic(2)}/x.jsonl"}}],\n'
                    ' "errorAction": {"file": {"path": "ro/errors/r.jsonl"}}}')
        for folder, mode in [(archive, 0o755), (os.path.join(archive, "rules"), 0o755),
                             (os.path.join(archive, "rules", "a.json"), 0o644), (os.path.join(archive, "ro"), 0o555),
                             (os.path.join(archive, "made"), 0o555), (os.path.join(archive, "made", "dev-1"), 0o777)]:
            os.chmod(folder, mode)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BIN, "check", "rules"],
                           cwd=archive, capture_output=True, text=True, timeout=60)
        check("check of an archive this user may not write", p.returncode == 65
              and "rules/a.json:1:62: error: file action: archive root 'ro' is not writable (Permission denied) and "
                  "holds nothing yet: every result would fail" in p.stdout
              and "rules/a.json:3:35: error: file action: 'path': its folder 'ro/errors' cannot be made: 'ro' is not "
                  "writable (Permission denied): every result would fail" in p.stdout
              and p.stdout.count("error: ") == 2, f"{p.returncode} {p.stdout} {p.stderr}")

# import aws never writes over the file it imports, --force or not.
import tempfile
with tempfile.TemporaryDirectory() as work:
    source = os.path.join(work, "HighTemp.json")
    original = json.dumps({"ruleArn": "arn:aws:iot:us-east-1:1:rule/HighTemp", "rule": {
        "ruleName": "HighTemp", "sql": "SELECT * FROM 'a'", "actions": [], "awsIotSqlVersion": "2016-03-23"}})
    with open(source, "w") as f:
        f.write(original)
    p = subprocess.run([BIN, "import", "aws", "HighTemp.json", "--force"], cwd=work, capture_output=True,
                       text=True, timeout=60)
    with open(source) as f:
        kept = f.read()
    check("import aws keeps its input", p.returncode == 64 and kept == original and "-o FOLDER" in p.stderr,
          f"{p.returncode} {p.stderr}")
    # -o names a folder made when missing, even a one-letter one (it trapped, exit 132); one named
    # as a rule file that does not exist is refused (it was made as a folder).
    for folder in ("x", "q/rules"):
        p = subprocess.run([BIN, "import", "aws", "HighTemp.json", "-o", folder], cwd=work, capture_output=True,
                           text=True, timeout=60)
        check(f"import aws -o {folder} (missing)", p.returncode == 0
              and os.path.isfile(os.path.join(work, folder, "HighTemp.json")), f"{p.returncode} {p.stderr}")
    p = subprocess.run([BIN, "import", "aws", "HighTemp.json", "-o", ""], cwd=work, capture_output=True,
                       text=True, timeout=60)
    check("import aws -o ''", p.returncode == 64 and "-o : it is empty" in p.stderr, f"{p.returncode} {p.stderr}")
    p = subprocess.run([BIN, "import", "aws", "HighTemp.json", "-o", "all.json"], cwd=work, capture_output=True,
                       text=True, timeout=60)
    check("import aws -o all.json (missing)", p.returncode == 64 and "named as a rule file, not a folder" in p.stderr
          and not os.path.exists(os.path.join(work, "all.json")), f"{p.returncode} {p.stderr}")
    # The written rule's warnings are said, as `check` says them (a republish back into the rule).
    with open(os.path.join(work, "Loop.json"), "w") as f:
        json.dump({"rule": {"ruleName": "Loop", "sql": "SELECT * FROM 'dev/+/t'", "awsIotSqlVersion": "2016-03-23",
                            "actions": [{"republish": {"topic": "dev/x/t"}}]}}, f)
    p = subprocess.run([BIN, "import", "aws", "Loop.json", "-o", "loop"], cwd=work, capture_output=True, text=True,
                       timeout=60)
    check("import aws says check's warnings", p.returncode == 0 and "loop/Loop.json:" in p.stderr
          and "warning: rule 'Loop': the republish topic 'dev/x/t' can match the rule's own FROM filter" in p.stderr,
          f"{p.returncode} {p.stderr}")

# Evaluation limits: a statement that doubles a string thirty times stops at 16 MiB a value with a runtime
# error (the batch goes on), and the one-shot eval exits 65 saying why.
doubling = "SET @v0 = 'xy', " + ", ".join(f"@v{i} = concat(@v{i - 1}, @v{i - 1})" for i in range(1, 31)) + \
    " SELECT length(@v30) AS n FROM 't'"
answers = batch([{"sql": doubling, "topic": "t", "payload": {}},
                 {"sql": "SELECT 1 AS one FROM 't'", "topic": "t", "payload": {}}])
e = answers[0].get("error", {}) if answers else {}
check("limit: runtime error", e.get("kind") == "runtime" and "16 MiB" in e.get("message", ""), answers)
check("limit: batch goes on", len(answers) == 2 and json.loads(answers[1]["payload"]) == {"one": 1}, answers)
p = subprocess.run([BIN, "eval", "--sql", doubling, "--payload", "{}"], capture_output=True, text=True, timeout=60)
check("limit: one shot", p.returncode == 65 and "16 MiB" in p.stderr, (p.returncode, p.stderr))
# A REPL script naming a payload file that is not there: says why, exit 74 as every unreadable input.
p = subprocess.run([BIN, "repl"], input=".payload @/nonexistent/p.json\n", capture_output=True, text=True, timeout=60)
check("repl: unreadable payload file", p.returncode == 74 and
      "stdin:1: error: /nonexistent/p.json: no such file or folder" in p.stderr, (p.returncode, p.stderr))
# Fields read from a payload that is not JSON are Undefined, as in AWS, and eval says so.
p = subprocess.run([BIN, "eval", "--sql", "SELECT a FROM 't'", "--payload", "not json"], capture_output=True,
                   text=True, timeout=60)
check("non-JSON payload: warned", p.returncode == 0 and p.stdout == "{}" and
      "reads fields of a payload that is not JSON" in p.stderr, (p.returncode, p.stdout, p.stderr))
# In a REPL script the stopped statement is an error of the script: its line in front, exit 65 (after
# the warning that AWS would refuse its 31 SET variables).
p = subprocess.run([BIN, "repl"], input="SELECT 1 AS one FROM 't'\n" + doubling + "\n", capture_output=True,
                   text=True, timeout=60)
check("limit: repl script", p.returncode == 65 and "\nstdin:2:616: error: a value of 32 MiB was made" in p.stderr
      and "the evaluation was stopped\n" in p.stderr
      and p.stderr.startswith("stdin:2:233: warning: '@v10' is variable 11: AWS IoT refuses more than 10")
      and "16 MiB" in p.stderr and '"one": 1' in p.stdout, (p.returncode, p.stdout, p.stderr))
# A stopped evaluation says where, with a caret under the operation that made the value.
big = "x" * (9 << 20)
p = subprocess.run([BIN, "eval", "--sql", "SELECT VALUE length(s + s) FROM 't'", "--topic", "t", "--payload-file", "-"],
                   input=json.dumps({"s": big}), capture_output=True, text=True, timeout=60)
check("limit: position and caret", p.returncode == 65 and p.stderr.startswith("1:21: error: a value of 18 MiB")
      and "\n                    ^" in p.stderr, (p.returncode, p.stderr[:300]))
# Control characters from rule test files (a case name, a topic) and from file names are spelled out,
# never written raw to the terminal.
with tempfile.TemporaryDirectory() as work:
    with open(os.path.join(work, "esc.json"), "w") as f:
        f.write(json.dumps({"sql": "SELECT * FROM 'a/+'", "actions": []}))
    with open(os.path.join(work, "esc.test.json"), "w") as f:
        f.write(json.dumps({"cases": [
            {"name": "n\u001b[31mRED", "topic": "a/b", "payload": {}, "expect": {"nothing": 1}},
            {"name": "t", "topic": "a/b\u0000", "payload": {}, "expect": {"output": {}}}]}))
    p = subprocess.run([BIN, "test", work], capture_output=True, text=True, timeout=60)
    check("test: control characters spelled out", p.returncode != 0 and "\x1b" not in p.stdout
          and "\x00" not in p.stdout and "n\\u001B[31mRED" in p.stdout and "a/b\\u0000" in p.stdout, p.stdout)
    with open(os.path.join(work, "nl\nx.json"), "w") as f:
        f.write("{")
    p = subprocess.run([BIN, "check", work], capture_output=True, text=True, timeout=60)
    check("check: a file name's newline spelled out", "nl\\u000Ax.json:1:2: error:" in p.stdout + p.stderr,
          p.stdout + p.stderr)

# Standard output that loses text (a full disk): every command says so and ends with 74, not 0 (run
# after its work is done; Foundation's FileHandle.write had stopped eval with SIGILL).
with tempfile.TemporaryDirectory() as work:
    os.makedirs(os.path.join(work, "rules"))
    with open(os.path.join(work, "rules", "r.json"), "w") as f:
        f.write(json.dumps({"sql": "SELECT * FROM 'a/+'", "actions": [{"file": {"path": "arch/${topic(2)}.jsonl"}}]}))
    with open(os.path.join(work, "in.jsonl"), "w") as f:
        f.write(json.dumps({"topic": "a/b", "payload": {"i": 1}}) + "\n")
    with open(os.path.join(work, "batch.jsonl"), "w") as f:
        f.write(json.dumps({"sql": "SELECT 1 AS a FROM 't'", "topic": "t", "payload": {}}) + "\n")
    # Commands that fail as well (a failing case, an invalid rule, a failing script): lost output is
    # still 74, not their 1 or 65, which would hide that the report never reached its reader.
    os.makedirs(os.path.join(work, "failing"))
    with open(os.path.join(work, "failing", "f.json"), "w") as f:
        f.write(json.dumps({"sql": "SELECT 1 AS a FROM 't'", "actions": []}))
    with open(os.path.join(work, "failing", "f.test.json"), "w") as f:
        f.write(json.dumps([{"name": "wrong", "topic": "t", "expect": {"output": {"a": 2}}}]))
    commands = {
        "test, failing": ([BIN, "test", "failing"], None),
        "check, invalid": ([BIN, "check", "failing"], None),
        "repl, failing": ([BIN, "repl"], "SELECT FROM 't'\nSELECT 1 AS a FROM 't'\n"),
        "eval": ([BIN, "eval", "--sql", "SELECT 1 AS a FROM 't'", "--topic", "t", "--payload", "{}"], None),
        "eval --batch": ([BIN, "eval", "--batch", "batch.jsonl"], None),
        "check": ([BIN, "check", "rules"], None),
        "functions": ([BIN, "functions"], None),
        "repl": ([BIN, "repl", "--payload", "{}"], "SELECT 1 AS a FROM 't'\n"),
        "run": ([BIN, "run", "--rules", "rules", "--source", "file:in.jsonl"], None),
    }
    for name, (command, stdin) in commands.items():
        with open("/dev/full", "w") as full:
            p = subprocess.run(command, cwd=work, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
                               input=stdin if stdin is not None else "")
        check(f"{name}: standard output full", p.returncode == 74
              and "iotrules: error: cannot write standard output: No space left on device" in p.stderr,
              (p.returncode, p.stderr[-300:]))
    with open(os.path.join(work, "arch", "b.jsonl")) as f:
        check("run: its work done when standard output is full", f.read() == '{"i":1}\n')
    # With JSON logs, that last word is a record too (a shipper choked on the text line).
    with open("/dev/full", "w") as full:
        p = subprocess.run([BIN, "run", "--rules", "rules", "--source", "file:in.jsonl", "--log-format", "json"],
                           cwd=work, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    try:
        records = [json.loads(line) for line in p.stderr.splitlines()]
        last = records[-1]
        ended = [r for r in records if r.get("message") == "run ended"]
    except (ValueError, IndexError):
        last, ended = {}, []
    check("run --log-format json: standard output full", p.returncode == 74 and last.get("level") == "critical"
          and last.get("message") == "cannot write standard output: No space left on device"
          and last.get("exitStatus") == 74
          # The run's own record says the status the run ends with (it said 0).
          and len(ended) == 1 and ended[0].get("exitStatus") == 74, (p.returncode, p.stderr[-600:]))

# A shared group with the default client id is warned of: two members of one id take the broker's
# connection from each other. (A broker that refuses: the run retries until stopped.)
with tempfile.TemporaryDirectory() as work:
    os.makedirs(os.path.join(work, "rules"))
    with open(os.path.join(work, "rules", "a.json"), "w") as f:
        json.dump({"sql": "SELECT * FROM 'a/#'", "actions": []}, f)
    said = ""
    try:
        subprocess.run([BIN, "run", "--rules", "rules", "--source", "mqtt://127.0.0.1:9", "--shared-group", "g"],
                       cwd=work, capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired as expired:
        said = expired.stderr.decode() if isinstance(expired.stderr, bytes) else (expired.stderr or "")
    check("run: --shared-group with the default client id", "--shared-group with the client id 'iotrules': "
          "give each member of the group its own --client-id" in said, said[-400:])

# TLS files beside a plain-TCP broker (a mistyped scheme) are refused before anything starts.
p = subprocess.run([BIN, "run", "--rules", ".", "--source", "mqtt://127.0.0.1:9", "--ca-file", "ca.pem"],
                   capture_output=True, text=True, timeout=60)
check("run: --ca-file with mqtt://", p.returncode == 64 and "--ca-file is for TLS, but the broker URL "
      "'mqtt://127.0.0.1:9' is plain TCP (mqtt://): write mqtts:// to use TLS" in p.stderr, (p.returncode, p.stderr))
p = subprocess.run([BIN, "run", "--rules", ".", "--source", "-", "--mqtt", "MQTT://127.0.0.1:9", "--ca-file", "c.pem"],
                   capture_output=True, text=True, timeout=60, input="")
check("run: --ca-file with MQTT:// (any case)", p.returncode == 64 and "is plain TCP" in p.stderr, (p.returncode, p.stderr))
p = subprocess.run([BIN, "run", "--rules", ".", "--source", "-", "--key-file", "k.pem"], capture_output=True,
                   text=True, timeout=60, input="")
check("run: --key-file without MQTT", p.returncode == 64 and "--key-file is for an mqtts:// broker" in p.stderr,
      (p.returncode, p.stderr))
# An empty client id is a usage error before any rule loads (it exited 74 after loading, in the
# library's words).
p = subprocess.run([BIN, "run", "--rules", "/nonexistent", "--source", "mqtt://127.0.0.1:9", "--client-id", ""],
                   capture_output=True, text=True, timeout=60)
check("run: empty --client-id", p.returncode == 64 and "--client-id is empty" in p.stderr, (p.returncode, p.stderr))
# A share name is NAME in $share/NAME/<filter>: one with '/' made another filter and lost every
# message; one with '+' was refused by the broker after connecting (exit 74).
for group in ["team/x", "", "a+"]:
    p = subprocess.run([BIN, "run", "--rules", "/nonexistent", "--source", "mqtt://127.0.0.1:9", "--shared-group", group],
                       capture_output=True, text=True, timeout=60)
    check("run: --shared-group " + repr(group), p.returncode == 64 and "a share name is not empty" in p.stderr,
          (p.returncode, p.stderr))
p = subprocess.run([BIN, "run", "--rules", "/nonexistent", "--source", "mqtt://127.0.0.1:9", "--client-id", "ab\x01c"],
                   capture_output=True, text=True, timeout=60)
check("run: --client-id with a control character", p.returncode == 64 and "control character U+0001" in p.stderr,
      (p.returncode, p.stderr))
# Kafka settings librdkafka refuses only together, and a group given twice: usage errors before
# anything starts (they exited 74 after the rules loaded; the last group won).
p = subprocess.run([BIN, "run", "--rules", "/nonexistent", "--source", "kafka://127.0.0.1:9/t?group=g",
                    "--kafka-config", "max.poll.interval.ms=1000"], capture_output=True, text=True, timeout=60)
check("run: --kafka-config refused together", p.returncode == 64 and "refuses these settings together" in p.stderr,
      (p.returncode, p.stderr))
# --qos 0 on MQTT is warned of at start: the broker queues nothing for it while the daemon is away.
p = subprocess.run([BIN, "run", "--rules", "/nonexistent", "--source", "mqtt://127.0.0.1:9", "--qos", "0"],
                   capture_output=True, text=True, timeout=60)
check("run --qos 0: warned", "--qos 0: a broker may queue nothing for a QoS 0 subscription" in p.stderr,
      (p.returncode, p.stderr[:400]))
# --kafka-config-file keeps secrets off the command line: its lines are settings as --kafka-config's
# are (the settings above, refused together from it too); a problem names the file's line and the
# key, never a value (a misspelt sasl.password's value was printed), nor does a text without '='.
with tempfile.TemporaryDirectory() as folder:
    properties = os.path.join(folder, "kafka.properties")
    with open(properties, "w") as f:
        f.write("# consumer\n\n  max.poll.interval.ms=1000\r\n")
    p = subprocess.run([BIN, "run", "--rules", "/nonexistent", "--source", "kafka://127.0.0.1:9/t?group=g",
                        "--kafka-config-file", properties], capture_output=True, text=True, timeout=60)
    check("run: --kafka-config-file refused together", p.returncode == 64
          and "refuses these settings together" in p.stderr, (p.returncode, p.stderr))
    with open(properties, "w") as f:
        f.write("security.protocol=SASL_PLAINTEXT\nsasl.pasword=hunter2SECRET\n")
    for arguments, said in [(["--kafka-config-file", properties], f"--kafka-config-file {properties}:2 'sasl.pasword': No such configuration property"),
                            (["--kafka-config", "sasl.passwordhunter2SECRET"], "--kafka-config: a setting is not key=value")]:
        p = subprocess.run([BIN, "run", "--rules", "/nonexistent", "--source", "kafka://127.0.0.1:9/t?group=g"]
                           + arguments, capture_output=True, text=True, timeout=60)
        check(f"run {arguments[0]}: the secret is not said", p.returncode == 64 and said in p.stderr
              and "hunter2" not in p.stderr + p.stdout, (p.returncode, p.stderr))
    p = subprocess.run([BIN, "run", "--rules", "/nonexistent", "--source", "kafka://127.0.0.1:9/t?group=g",
                        "--kafka-config-file", os.path.join(folder, "nope")], capture_output=True, text=True, timeout=60)
    check("run: --kafka-config-file missing", p.returncode == 74 and "No such file or directory" in p.stderr,
          (p.returncode, p.stderr))
p = subprocess.run([BIN, "run", "--rules", "/nonexistent", "--source", "kafka://127.0.0.1:9/t?group=g&group=h"],
                   capture_output=True, text=True, timeout=60)
check("run: two consumer groups", p.returncode == 64 and "two consumer groups" in p.stderr, (p.returncode, p.stderr))
# A payload as deep as the engine takes (512 levels) is a payload, not a request too deep; a deeper
# one is Binary, as the same bytes through payload_base64.
deep = "[" * 512 + "]" * 512
deeper = "[" * 600 + "]" * 600
p = subprocess.run([BIN, "eval", "--batch", "-"], capture_output=True, text=True, timeout=60,
                   input=json.dumps({"sql": "SELECT VALUE isUndefined(get(*, 0)) FROM 't'", "topic": "t"})[:-1]
                   + ', "payload": ' + deep + "}\n"
                   + json.dumps({"sql": "SELECT * FROM 't'", "topic": "t"})[:-1] + ', "payload": ' + deeper + "}\n")
answers = [json.loads(line) for line in p.stdout.splitlines()]
check("eval --batch: a 512-deep payload", len(answers) == 2 and answers[0] == {"match": True, "payload": "false"}, answers[:1])
check("eval --batch: a 600-deep payload is Binary", len(answers) == 2 and answers[1].get("payload") == deeper,
      str(answers[1:])[:200])
# A lone surrogate escape in the payload: the payload is Binary, carried as written, as a replay line's
# and --payload's (the whole request was refused as not JSON); elsewhere in the line it stays an error.
answers = batch([
    '{"sql": "SELECT * FROM \'t\'", "topic": "t", "payload": {"a": "\\ud800"}}',
    '{"sql": "SELECT isUndefined(a) AS u FROM \'t\'", "topic": "t", "payload": {"a": "\\ud800"}}',
    '{"sql": "SELECT * FROM \'t\'", "topic": "t", "payload": {"a": "\\ud800"}, "x": [}',
    '{"sql": "SELECT * FROM \'\\ud800\'", "topic": "t", "payload": {}}',
])
check("eval --batch: a lone surrogate payload is Binary, passed through",
      answers[:2] == [{"match": True, "payload": '{"a": "\\ud800"}'}, {"match": True, "payload": '{"u":true}'}],
      answers[:2])
check("eval --batch: a lone surrogate elsewhere, or a broken rest, is an input error",
      [a.get("error", {}).get("kind") for a in answers[2:]] == ["input", "input"], answers[2:])
# explain refuses SQL that is not UTF-8, as eval does (it printed a program with U+FFFD).
p = subprocess.run([BIN.encode(), b"explain", b"--sql", b"SELECT '\xe9' FROM 't'"], capture_output=True, timeout=60)
check("explain: --sql not UTF-8", p.returncode == 65 and b"--sql is not UTF-8 text" in p.stderr, (p.returncode, p.stderr))
# A query is read by nothing: refused, not ignored (?tls=1 gave plain TCP).
p = subprocess.run([BIN, "run", "--rules", "/nonexistent", "--source", "mqtt://127.0.0.1:9?tls=1"],
                   capture_output=True, text=True, timeout=60)
check("run: an MQTT URL with a query", p.returncode == 64 and "unexpected query '?tls=1'" in p.stderr,
      (p.returncode, p.stderr))
# A certificate without its key is a usage error before any rule loads (it exited 74 after loading).
p = subprocess.run([BIN, "run", "--rules", "/nonexistent", "--source", "mqtts://127.0.0.1:9", "--cert-file", "c.pem"],
                   capture_output=True, text=True, timeout=60)
check("run: --cert-file without --key-file", p.returncode == 64 and "--cert-file needs --key-file too" in p.stderr,
      (p.returncode, p.stderr))
# An unset --password-env is a usage error, said before any rule loads (it used to start, log
# "password <redacted>", load the rules, and exit 74).
environment = {k: v for k, v in os.environ.items() if k != "IOTRULES_NO_SUCH_PASSWORD"}
p = subprocess.run([BIN, "run", "--rules", ".", "--source", "mqtt://127.0.0.1:9", "--username", "u",
                    "--password-env", "IOTRULES_NO_SUCH_PASSWORD"], capture_output=True, text=True, timeout=60,
                   env=environment)
check("run: --password-env names an unset variable", p.returncode == 64
      and "the environment variable IOTRULES_NO_SUCH_PASSWORD is not set" in p.stderr
      and "rules loaded" not in p.stderr and "redacted" not in p.stderr, (p.returncode, p.stderr))

# A rule refused for its failing tests still shows its warnings (they often say why the test fails).
with tempfile.TemporaryDirectory() as work:
    with open(os.path.join(work, "b.json"), "w") as f:
        f.write(json.dumps({"sql": "SELECT upper(d) AS dev FROM 'a/+'",
                            "actions": [{"file": {"path": "o/${dev}.jsonl"}}]}))
    with open(os.path.join(work, "b.test.json"), "w") as f:
        f.write(json.dumps([{"topic": "a/b", "payload": {"d": "x"}, "expect": {"output": {"dev": "Y"}}}]))
    p = subprocess.run([BIN, "check", "b.json"], cwd=work, capture_output=True, text=True, timeout=60)
    check("check: warnings beside failing tests", p.returncode == 65
          and "b.json:1:81: warning: the template reads the incoming message's 'dev'" in p.stdout, p.stdout)

# A kafka action's `debug` property: every line of a JSON log is JSON (the producer check made at the
# load wrote librdkafka's debug lines raw to standard error).
with tempfile.TemporaryDirectory() as work:
    os.mkdir(os.path.join(work, "rules"))
    with open(os.path.join(work, "rules", "k.json"), "w") as f:
        f.write(json.dumps({"sql": "SELECT * FROM 'a'", "actions": [{"kafka": {
            "bootstrapServers": "127.0.0.1:9", "topic": "o", "clientProperties": {"debug": "broker"}}}]}))
    p = subprocess.run([BIN, "run", "--rules", "rules", "--source", "-", "--log-format", "json"], cwd=work,
                       capture_output=True, text=True, input="", timeout=60)
    raw = [line for line in p.stderr.splitlines() if not line.startswith("{")]
    check("kafka debug: JSON log lines only", p.returncode == 0 and '"rules loaded"' in p.stderr and not raw,
          (p.returncode, raw[:3]))

# The README's rule with every kind of action is one `check` takes as it is.
readme = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")).read()
marker = readme.find("One rule with every kind of action")
start = readme.find("```json\n", marker) + len("```json\n")
example = readme[start:readme.find("```", start)]
check("README example found", marker >= 0 and '"republish"' in example, example[:80])
with tempfile.TemporaryDirectory() as work:
    with open(os.path.join(work, "high_temp_fanout.json"), "w") as f:
        f.write(example)
    p = subprocess.run([BIN, "check", "high_temp_fanout.json"], cwd=work, capture_output=True, text=True,
                       timeout=60)
    check("README example checks", p.returncode == 0 and "ok (rule high_temp_fanout)" in p.stdout,
          (p.returncode, p.stdout, p.stderr))

# The command line's edges, from a sweep of every command.
with tempfile.TemporaryDirectory() as work:
    os.makedirs(os.path.join(work, "bad"))
    with open(os.path.join(work, "bad", "r.json"), "w") as f:
        f.write('{"sql": "SELECT a, FROM \'t\'"}')
    with open(os.path.join(work, "bad", "good.json"), "w") as f:
        f.write('{"sql": "SELECT a FROM \'t\'", "actions": []}')

    def run(arguments, **options):
        return subprocess.run([BIN] + arguments, cwd=work, capture_output=True, text=True, timeout=60, **options)

    # One dash and an h among letters: the parser read `-github` as `-g -i -t -h ...`, printed the
    # help and exited 0, so `check` passed a broken rule unchecked.
    for arguments, word in [(["check", "bad", "-github"], "-github"), (["check", "bad", "-dash.json"], "-dash.json"),
                            (["check", "bad", "-xh"], "-xh"),
                            (["check", "bad", "--warnings-as-errors", "-the-rules.json"], "-the-rules.json")]:
        p = run(arguments)
        check(f"check bad {word}", p.returncode == 64 and f"unknown option '{word}'" in p.stderr,
              (p.returncode, p.stderr[:200]))
    # `help` with a word that names no command: the general help and 0, so a typo looked answered.
    for arguments, said in [(["help", "chekc"], "'iotrules' has no command 'chekc'; its commands are run, check"),
                            (["help", "import", "azure"], "'iotrules import' has no command 'azure'; its commands are aws"),
                            (["help", "check", "rules"], "'iotrules check' has no subcommand 'rules'"),
                            (["help", "--", "chekc"], "'iotrules' has no command 'chekc'")]:
        p = run(arguments)
        check(" ".join(arguments), p.returncode == 64 and said in p.stderr and p.stdout == "",
              (p.returncode, p.stderr[:200], p.stdout[:100]))
    for arguments, said in [(["help"], "SUBCOMMANDS"), (["help", "import", "aws"], "iotrules import aws"),
                            (["help", "help"], "iotrules help")]:
        p = run(arguments)
        check(" ".join(arguments), p.returncode == 0 and said in p.stdout, (p.returncode, p.stdout[:300]))
    # Help and version text that is lost says so, as every command's output does.
    for arguments in [["--version"], ["--help"], ["check", "--help"]]:
        with open("/dev/full", "w") as full:
            p = subprocess.run([BIN] + arguments, cwd=work, stdout=full, stderr=subprocess.PIPE, text=True,
                               timeout=60)
        check(f"{arguments} > /dev/full", p.returncode == 74 and "cannot write standard output" in p.stderr,
              (p.returncode, p.stderr))
    p = run(["--version"])
    check("--version", p.returncode == 0 and p.stdout.count("\n") == 1, (p.returncode, p.stdout))
    # A closed standard input: `run --source -` read the runtime's own descriptor, which took its
    # number, and waited for ever.
    closed = {"preexec_fn": lambda: os.close(0), "stdin": None}
    p = subprocess.run([BIN, "run", "--rules", "bad/good.json", "--source", "-"], cwd=work, capture_output=False,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, **closed)
    check("run --source - <&-", p.returncode == 74
          and "reading standard input: Bad file descriptor" in p.stderr, (p.returncode, p.stderr[-300:]))
    p = subprocess.run([BIN, "eval", "--sql", "SELECT * FROM 't'", "--payload-file", "-"], cwd=work,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, **closed)
    check("eval --payload-file - <&-", p.returncode == 74
          and "iotrules: error: reading standard input: Bad file descriptor" in p.stderr, (p.returncode, p.stderr))
    # Usage errors are 64, said before anything starts.
    for arguments, said in [
        (["functions", "--family", "nosuch"], "no function family 'nosuch'"),
        (["explain", "bad/good.json", "--sql-version", "2015-10-08"], "drop --sql-version"),
        (["run", "--rules", "bad/good.json", "--source", "kafka://127.0.0.1:9/t?group=g", "--kafka-config",
          "group.id=x"], "comes from the source URL"),
        (["run", "--rules", "bad/good.json", "--source", "kafka://127.0.0.1:9/t?group=g", "--kafka-config",
          "enable.auto.commit=true"], "is managed by iotrules"),
        # A topic pattern librdkafka cannot compile: it loaded the rules, then ended with 74.
        (["run", "--rules", "bad/good.json", "--source", "kafka://127.0.0.1:9/^a(?group=g"],
         "topic pattern '^a(' in"),
    ]:
        p = run(arguments, input="")
        check(f"{arguments}: usage error", p.returncode == 64 and said in p.stderr
              and "rules loaded" not in p.stderr, (p.returncode, p.stderr[:300]))
    # A secrets folder that cannot be read is unreadable input (74, as a rule path is), said before
    # the rules load; an MQTT string option that is not UTF-8 is a usage error (it went out with
    # U+FFFD); the REPL's --topic and --client-id are refused as eval's are (65).
    p = run(["run", "--rules", "bad/good.json", "--source", "-", "--secrets-dir", "nope"], input="")
    check("run --secrets-dir nope", p.returncode == 74 and "--secrets-dir nope: no such file or folder" in p.stderr
          and "rules loaded" not in p.stderr, (p.returncode, p.stderr[:300]))
    p = subprocess.run([BIN.encode(), b"run", b"--rules", b"bad/good.json", b"--source", b"mqtt://127.0.0.1:9",
                        b"--client-id", b"dev\xff"], cwd=work, capture_output=True, timeout=60)
    check("run --client-id not UTF-8", p.returncode == 64
          and b"--client-id is not UTF-8 text (byte 0xFF at offset 3)" in p.stderr, (p.returncode, p.stderr[:300]))
    # A source or payload file whose name is not UTF-8 is said so (it was "no such file or folder":
    # the argument reaches iotrules with U+FFFD, which names no file).
    with open(os.path.join(work.encode(), b"a\xff.jsonl"), "w") as f:
        f.write('{"topic": "a", "payload": {}}\n')
    for arguments in ([b"run", b"--rules", b"bad/good.json", b"--source", b"file:a\xff.jsonl"],
                      [b"eval", b"--sql", b"SELECT * FROM 'a'", b"--payload-file", b"a\xff.jsonl"]):
        p = subprocess.run([BIN.encode()] + arguments, cwd=work, capture_output=True, timeout=60)
        check(f"{arguments}: a name not UTF-8", p.returncode == 74
              and b"if its name holds bytes that are not UTF-8" in p.stderr, (p.returncode, p.stderr[:300]))
    p = subprocess.run([BIN.encode(), b"repl", b"--client-id", b"dev\xff"], cwd=work, capture_output=True,
                       input=b"SELECT clientid() AS c FROM '#'\n", timeout=60)
    check("repl --client-id not UTF-8", p.returncode == 65 and p.stdout == b""
          and b"--client-id is not UTF-8 text" in p.stderr, (p.returncode, p.stdout, p.stderr[:300]))
    # --kafka-config is the Kafka source's: another source does not read it, and says so (exit 64);
    # `false`, iotrules's own value for the auto-commit keys, is accepted with a Kafka source.
    with open(os.path.join(work, "feed.jsonl"), "w") as f:
        f.write('{"topic": "a", "payload": {}}\n')
    p = run(["run", "--rules", "bad/good.json", "--source", "file:feed.jsonl", "--kafka-config",
             "enable.auto.commit=true"], input="")
    check("run: --kafka-config on a replay is a usage error", p.returncode == 64
          and "--kafka-config is for a Kafka source (kafka://...), and this run's source is a file" in p.stderr,
          (p.returncode, p.stderr[:300]))
    arguments = ["--source", "kafka://127.0.0.1:9/t?group=g", "--kafka-config", "enable.auto.commit=false",
                 "--kafka-config", "enable.auto.offset.store=false", "--rules", "nosuch"]
    p = run(["run", "--rules", "bad/good.json"] + arguments, input="")
    check(f"run {arguments}: not a usage error", p.returncode != 64, (p.returncode, p.stderr[:300]))
    # Standard input that is a file not at its start (a script read its first line), followed and
    # stopped at its end: no line is left, and no 'stopped before' is said (it compared the file's
    # size with the bytes read, not with the position).
    with open(os.path.join(work, "three.jsonl"), "w") as f:
        f.write("".join('{"topic": "t", "payload": {"a": %d}}\n' % n for n in range(3)))
    fd = os.open(os.path.join(work, "three.jsonl"), os.O_RDONLY)
    os.lseek(fd, len('{"topic": "t", "payload": {"a": 0}}\n'), os.SEEK_SET)
    daemon = subprocess.Popen([BIN, "run", "--rules", "bad/good.json", "--source", "-", "--follow"], cwd=work,
                              stdin=fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(fd)
    # Stopped a second after it has read the file to its end (a fixed 1.5 s from the start was
    # short for an ASan build on a loaded machine): at most 60 s.
    size = os.path.getsize(os.path.join(work, "three.jsonl"))
    for _ in range(1200):
        try:
            with open(f"/proc/{daemon.pid}/fdinfo/0") as info:
                if f"pos:\t{size}\n" in info.read():
                    break
        except OSError:
            pass
        time.sleep(0.05)
    time.sleep(1)
    daemon.terminate()
    out, err = daemon.communicate(timeout=30)
    check("run --source - --follow from a file's middle, stopped at its end",
          "stopped before" not in err and "2 messages" in out, (out, err[-400:]))
    # A rule whose action cannot start (a missing secret) is said at its file, as a reload says it,
    # beside every other such rule; the start named no rule and ended at the first (exit 74).
    os.makedirs(os.path.join(work, "secretless"))
    for name in ["k1", "k2"]:
        with open(os.path.join(work, "secretless", f"{name}.json"), "w") as f:
            json.dump({"sql": "SELECT * FROM 't'", "actions": [{"kafka": {
                "bootstrapServers": "127.0.0.1:9", "topic": "out",
                "clientProperties": {"sasl.password": "${get_secret('missing')}"}}}]}, f)
    with open(os.path.join(work, "secretless", "ok.json"), "w") as f:
        json.dump({"sql": "SELECT * FROM 't'", "actions": [{"file": {"path": "out.jsonl"}}]}, f)
    p = run(["run", "--rules", "secretless", "--source", "file:feed.jsonl"])
    check("run: actions that cannot start", p.returncode == 65 and all(
        f"secretless/{name}.json:1:1: error: rule '{name}' not loaded: an action cannot start: "
        "kafka clientProperties 'sasl.password': get_secret('missing') found no secret" in p.stderr
        for name in ["k1", "k2"]) and "errors=2 rules=1" in p.stderr, (p.returncode, p.stderr[-900:]))
    # A topic or client id that is not UTF-8 is refused, as --sql is (U+FFFD stood in silently).
    for option in ["--topic", "--client-id"]:
        p = subprocess.run([BIN.encode(), b"eval", b"--sql", b"SELECT topic() AS t FROM '#'", option.encode(),
                            b"a\xffb"], cwd=work, capture_output=True, timeout=60)
        check(f"eval {option} not UTF-8", p.returncode == 65
              and f"{option} is not UTF-8 text (byte 0xFF at offset 1)".encode() in p.stderr, (p.returncode, p.stderr))

# The REPL at a terminal in the C locale (containers, `env -i`): libedit dropped every character
# beyond ASCII, `température` became `temprature`.
import pty
import select
import time


def read_pty(fd):
    """What the terminal shows within 0.2 s (b"" for nothing), or None once it is closed."""
    ready, _, _ = select.select([fd], [], [], 0.2)
    if not ready:
        return b""
    try:
        return os.read(fd, 4096)
    except OSError:
        return None


def end_pty(pid, fd):
    """Ends the REPL at the terminal: .quit, then, after 5 s, kill."""
    os.write(fd, b".quit\n")
    for _ in range(50):
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished:
            return
        time.sleep(0.1)
    os.kill(pid, 9)
    os.waitpid(pid, 0)


pid, fd = pty.fork()
if pid == 0:
    os.execve(BIN, [BIN, "repl", "--payload", "{}"], {"LC_ALL": "C", "TERM": "dumb", "NO_COLOR": "1",
                                                      "HOME": tempfile.gettempdir()})
screen = b""
deadline = time.monotonic() + 20
sent = False
while time.monotonic() < deadline and b'"x": ' not in screen:
    more = read_pty(fd)
    if more is None:
        break
    screen += more
    if not sent and b"iot>" in screen:
        os.write(fd, "SELECT 'température' AS x FROM 't';\n".encode())
        sent = True
end_pty(pid, fd)
check("repl at a terminal under LC_ALL=C keeps é", '"x": "température"' in screen.decode(errors="replace"),
      screen[-300:])

# run --source - --follow < FILE: the file truncated in place (logrotate's copytruncate) is read again from
# its start, as `tail -f` does (it was read on from the old offset: 50 lines lost, a fragment malformed).
with tempfile.TemporaryDirectory() as work:
    os.makedirs(os.path.join(work, "rules"))
    with open(os.path.join(work, "rules", "all.json"), "w") as f:
        json.dump({"sql": "SELECT n FROM 'test/#'", "actions": [{"file": {"path": "out/all.jsonl"}}]}, f)
    fed = os.path.join(work, "fed.jsonl")
    archived = os.path.join(work, "out", "all.jsonl")
    open(fed, "w").close()

    def lines(first, last):
        return "".join(json.dumps({"topic": "test/a", "payload": {"n": n}}) + "\n" for n in range(first, last + 1))

    def archived_count(wanted):
        """Waits (20 s at most) until the archive holds `wanted` lines; how many it holds."""
        count = 0
        for _ in range(200):
            count = sum(1 for _ in open(archived)) if os.path.exists(archived) else 0
            if count >= wanted:
                break
            time.sleep(0.1)
        return count

    with open(fed) as stdin:
        daemon = subprocess.Popen([BIN, "run", "--rules", "rules", "--source", "-", "--follow", "--log-level", "info"],
                                  cwd=work, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with open(fed, "a") as f:
            f.write(lines(1, 50))
        first = archived_count(50)
        with open(fed, "w") as f:
            f.write(lines(51, 60))
        time.sleep(0.3)
        with open(fed, "a") as f:
            f.write(lines(61, 150))
        last = archived_count(150)
        daemon.send_signal(signal.SIGTERM)
        try:
            out, err = daemon.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            out, err = daemon.communicate()
    numbers = [json.loads(line)["n"] for line in open(archived)] if os.path.exists(archived) else []
    check("run --source - --follow reads a truncated file again from its start",
          first == 50 and sorted(numbers) == list(range(1, 151))
          and "stdin: the file was truncated; reading it from its first line" in err and "(0 malformed)" in out,
          (first, last, len(numbers), out[-300:], err[-600:]))

# Ctrl-C gives up a `.payload @FILE` that blocks (a FIFO nobody writes to): the session goes on,
# the payload as it was (the read held the session until it was killed); the read given up ends, so a
# second `.payload @FIFO` gets what a writer sends (not raced by it); a terminal is refused (a read
# given up there took keys from the line editor).
import threading
fifo_dir = tempfile.mkdtemp()
fifo = os.path.join(fifo_dir, "fifo")
os.mkfifo(fifo)


def write_fifo():
    """Writes a payload into the FIFO once a reader opens it (10 s at most)."""
    for _ in range(100):
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            time.sleep(0.1)
            continue
        os.write(writer, b'{"sent": 2}')
        os.close(writer)
        return


pid, fd = pty.fork()
if pid == 0:
    os.execve(BIN, [BIN, "repl", "--payload", '{"kept": 1}'], {"TERM": "dumb", "NO_COLOR": "1",
                                                                 "HOME": tempfile.gettempdir()})
screen = b""
deadline = time.monotonic() + 20
step = 0
while time.monotonic() < deadline and b"is a terminal" not in screen:
    more = read_pty(fd)
    if more is None:
        break
    screen += more
    if step == 0 and b"iot>" in screen:
        os.write(fd, f".payload @{fifo}\n".encode())
        step, sent_at = 1, time.monotonic()
    elif step == 1 and time.monotonic() - sent_at > 0.5:
        os.write(fd, b"\x03")
        step = 2
    elif step == 2 and b"was not read" in screen:
        os.write(fd, b".payload\n")
        step = 3
    elif step == 3 and b'"kept": 1' in screen.split(b"was not read")[-1]:
        writer = threading.Thread(target=write_fifo)
        writer.start()
        os.write(fd, f".payload @{fifo}\n".encode())
        writer.join(timeout=15)
        step = 4
    elif step == 4 and b"Object" in screen.split(b"was not read")[-1].split(b'"kept": 1')[-1]:
        os.write(fd, b".payload @/dev/tty\n")
        step = 5
end_pty(pid, fd)
shutil.rmtree(fifo_dir, ignore_errors=True)
after = screen.split(b"was not read")[-1]
check("repl: Ctrl-C gives up a .payload @FIFO nobody writes to, and the next read gets the writer's payload",
      f"^C: {fifo} was not read; the payload is as it was".encode() in screen and b'"kept": 1' in after
      and b"payload: 11 bytes, Object" in after and b"/dev/tty: is a terminal, the one the REPL reads" in after,
      screen[-500:])

for f in failures:
    print("FAIL", f)
print(f"cli tests: {'ok' if not failures else f'{len(failures)} failed'}")
sys.exit(1 if failures else 0)
