#!/usr/bin/env python3
"""Fuzzes `iotrules eval --batch` with hostile payloads and statements, seeded and bounded.

Usage: python3 Tests/fuzz/fuzz_eval.py BIN [--lines N] [--seed S] [--chunk C]

`make asan` runs it on the binary built with AddressSanitizer; it runs as well on any build. Each chunk of
lines goes to one `eval --batch -`; the run fails, naming the first line that shows it, when:
- the process does not exit 0, or a sanitizer or a fatal error speaks on standard error;
- the answers are not one JSON object per input line, each a match, a no-match or a positioned error;
- `SELECT *` of bytes that cannot be JSON (the first byte says so) is not those bytes, unchanged (AWS
  passes a binary payload through);
- `SELECT *` of a document Python's json wrote does not read back, in Python, as the same document;
  `SELECT *, 7 AS k, ...` as that document with those members set in place or appended (and
  `SELECT 7 AS k, ..., *` as those members with the document's set in place or appended), and
  `SELECT name AS k0, ..., topic() AS t` as those of its members, `SELECT VALUE name` as that member.

Payloads: truncated and mutated documents, nesting around the 512 limit, numbers past 64 bits and past
the decimal range, lone surrogates, invalid UTF-8, NUL, byte order marks, long strings, duplicate keys,
names that are prefixes of the paths a statement reads, random bytes. Statements: paths, get(), CASE,
nested SELECT VALUE, string, regex, hash and number functions at their edges, templates, truncated and
mangled SQL text.
"""
import base64
import json
import re
import subprocess
import sys

import fuzzing

args, rnd = fuzzing.arguments("lines", 4000, chunk=500)

DOCUMENTS = [
    b'{"temperature": 21.50, "humidity": 40, "device": {"id": "dev-1", "loc": {"lat": 1.5, "lon": -0.0}}, '
    b'"r": [1, 2, 3], "arr": [{"v": 1, "s": "ab"}, {"v": 2, "s": "cd"}]}',
    b'{"a":{"b":{"c":[1,{"d":"x"}]}},"s":"hello world","n":-0,"big":123456789012345678901}',
    b'{"temperatur":1,"temperature":2,"temp":3,"temperaturex":4}',
    b'{"x":1,"x":2,"x":{"y":3},"x":[4]}',
    b'[1,2,{"a":1}]',
    b'"just a string"',
    b'12345678901234567890',
]
NUMBERS = [b'1e400', b'-1e400', b'1e-400', b'-0', b'-0.0', b'29.0', b'21.50', b'18446744073709551616',
           b'-9223372036854775808', b'9223372036854775808', b'1' * 400, b'0.' + b'0' * 150 + b'1', b'1E+2',
           b'-', b'1.', b'.5', b'01', b'1e', b'-01', b'1' * 5000, b'4.9E-324', b'1.7976931348623157E309']
STRINGS = [b'"\\ud800"', b'"\\udc00"', b'"\\ud800\\u0041"', b'"\\ud800\\udc00"', b'"\\u0000"', b'"a\x00b"',
           b'"\xff"', b'"\xc0\x80"', b'"\xe2\x82"', b'"\xf4\x90\x80\x80"', b'"\xed\xa0\x80"', b'"\\u00"',
           b'"\\x"', b'"\\"', b'"aaaaaaa', b'"aaaaaaaa', b'"\t"', b'"\xc3\xa9"', b'"' + b'\\n' * 100 + b'"',
           b'"' + b'x' * 70000 + b'"']
NAMES = ['temperature', 'temperatur', 'temperaturex', 'device', 'devic', 'a', 'b', 'c', 'aaaaaaaa', 'x', 'r', 'arr',
         'v', 's', '\\u0074emperature', 'd\\u00e9vice']


def value(depth=0):
    kind = rnd.randrange(8 if depth < 6 else 4)
    if kind == 0:
        return rnd.choice(NUMBERS)
    if kind == 1:
        return rnd.choice(STRINGS)
    if kind == 2:
        return rnd.choice([b'true', b'false', b'null', b'tru', b'nul'])
    if kind == 3:
        return str(rnd.randrange(-1000, 1000)).encode()
    if kind in (4, 5):
        count = rnd.choice([0, 1, 2, 5, 33, 130]) if depth == 0 else rnd.choice([0, 1, 2, 3])
        members = [b'"' + (rnd.choice(NAMES) if rnd.random() < 0.7 else 'k%d' % i).encode() + b'":' + value(depth + 1)
                   for i in range(count)]
        return b'{' + rnd.choice([b',', b', ', b' ,\n']).join(members) + b'}'
    return b'[' + b','.join(value(depth + 1) for _ in range(rnd.choice([0, 1, 3]))) + b']'


def mutated(data):
    data = bytearray(data)
    for _ in range(rnd.randrange(1, 4)):
        if not data:
            data = bytearray(b'{')
        at = rnd.randrange(len(data))
        operation = rnd.randrange(5)
        if operation == 0:
            data[at] = rnd.randrange(256)
        elif operation == 1:
            del data[at:]
        elif operation == 2:
            data.insert(at, rnd.choice(b'{}[]",:\\\x00\xff0-eE.'))
        elif operation == 3:
            del data[at]
        else:
            data[at:at] = rnd.choice([b'\xef\xbb\xbf', b'\\ud800', b'\x00', b'1e400', b'"'])
    return bytes(data)


def nested(depth, kind):
    return [b'[' * depth + b'1' + b']' * depth, b'{"a":' * depth + b'1' + b'}' * depth,
            b'[{"a":' * (depth // 2) + b'1' + b'}]' * (depth // 2), b'{"a":' * depth][kind]


def payload():
    kind = rnd.randrange(11)
    if kind == 0:
        document = rnd.choice(DOCUMENTS)
        return document[:rnd.randrange(len(document) + 1)]
    if kind == 1:
        return nested(rnd.choice([63, 64, 65, 511, 512, 513, 600]), rnd.randrange(4))
    if kind == 2:
        return rnd.choice(NUMBERS + STRINGS)
    if kind == 3:
        return b'\xef\xbb\xbf' + rnd.choice(DOCUMENTS + [b'', b'\xef'])[:rnd.randrange(3, 400)]
    if kind == 4:
        return mutated(rnd.choice(DOCUMENTS))
    if kind == 5:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 64)))
    if kind == 6:  # a name the statement reads, then a string cut at the end of the buffer
        return b'{"' + b'temperature'[:rnd.randrange(12)] + b'":"' + b'a' * rnd.randrange(24)
    if kind == 7:  # more members than the scanner records, repeated names at the end
        members = [b'"k%d":%d' % (i, i) for i in range(rnd.choice([31, 127, 128, 129, 200]))]
        members += [b'"k0":{"temperature":5}', b'"temperature":1', b'"temperature":2']
        return b'{"device":{' + b','.join(members) + b'},' + b','.join(members) + b'}'
    return value() if kind < 10 else mutated(value())


PATHS = ['temperature', 'temperatur', 'device.id', 'device.loc.lat', 'device.loc', 'get(a.b.c, 1).d', 'get(r, -1)',
         'get(r, 1000)', 'get(arr, 0).v', "get(device, 'id')", 'a.b.c', 'arr', 'x', 'x.y', 's', 'n', 'big', 'k0',
         'device.k129', 'temp', 'v']
CALLS = [
    "substring({s}, {i}, {j})", "lpad({s}, {i}, {t})", "rpad({s}, {i}, {t})", "replace({s}, {t}, {u})",
    "regexp_matches({s}, {re})", "regexp_replace({s}, {re}, {t})", "regexp_substr({s}, {re})",
    "encode({s}, 'base64')", "decode({s}, 'base64')", "decode(encode(*, 'base64'), 'base64')", "upper({s})",
    "trim({s})", "length({s})", "indexof({s}, {t})", "concat({s}, {t}, {u})", "cast({s} AS Decimal)",
    "cast({s} AS Int)", "cast({s} AS String)", "cast({s} AS Bool)", "{n} + {m}", "{n} - {m}", "{n} * {m}",
    "{n} / {m}", "{n} % {m}", "-{n}", "abs({n})", "round({n})", "ceil({n})", "power({n}, {m})", "sqrt({n})",
    "ln({n})", "mod({n}, {m})", "trunc({n}, {i})", "md5({s})", "sha256({s})", "transform('enrichArray', {s}, {t})",
    "transform('enrichArray', device, arr)", "remainder({n}, {m})", "exp({n})", "atan2({n}, {m})",
    "nanvl({n}, {m})", "{s} || {t}", "{s} = {t}", "{n} < {m}", "{s} IN {t}", "bitand({n}, {m})", "bitnot({n})",
    "numbytes({s})", "chr({i})", "get({s}, {i})", "parse_time('yyyy-MM-dd', {n})", "topic({i})",
]
STRING_ARGUMENTS = ["s", "temperature", "'abc'", "''", "'é𝄞x'", "device.id", "*", "r", "arr", "'%s'" % ('z' * 300),
                    "big", "'QUJDRA=='", "'!!!'", "x"]
NUMBER_ARGUMENTS = ["1e400", "-0", "0", "-0.0", "1", "-1", "9223372036854775807", "-9223372036854775808",
                    "18446744073709551616", "99999999999999999999.999999999999999999", "1e308", "1e-308", "0.1",
                    "temperature", "big", "'12'", "'1e400'", "x", "1" * 60]
INTEGER_ARGUMENTS = ["0", "-1", "2", "1000000", "2147483647", "-2147483648", "9223372036854775807", "3.5", "n", "'x'"]
PATTERNS = ["'a'", "'(a*)*b'", "'\\\\d+'", "'[:a]'", "'}'", "''", "'('", "'\\\\'", "'.*'", "'$'", "'\\\\p{L}'"]


def call():
    return rnd.choice(CALLS).format(
        s=rnd.choice(STRING_ARGUMENTS + PATHS), t=rnd.choice(STRING_ARGUMENTS), u=rnd.choice(STRING_ARGUMENTS),
        i=rnd.choice(INTEGER_ARGUMENTS), j=rnd.choice(INTEGER_ARGUMENTS), n=rnd.choice(NUMBER_ARGUMENTS + PATHS),
        m=rnd.choice(NUMBER_ARGUMENTS), re=rnd.choice(PATTERNS))


def expression(depth=0):
    kind = rnd.randrange(6 if depth < 3 else 3)
    if kind == 0:
        return rnd.choice(PATHS)
    if kind in (1, 2):
        return call()
    if kind == 3:
        return "CASE %s WHEN %s THEN %s ELSE %s END" % tuple(expression(depth + 1) for _ in range(4))
    if kind == 4:
        return "(SELECT VALUE %s FROM %s AS e WHERE %s)" % (
            rnd.choice(['e', 'e.v', 'e * 2', call()]), rnd.choice(['arr', 'r', 'a.b.c', 'x', 's']),
            rnd.choice(['true', 'e.v > 1', 'e = 2']))
    return "CASE WHEN %s THEN %s END" % (expression(depth + 1), expression(depth + 1))


def statement():
    kind = rnd.randrange(8)
    if kind == 0:
        text = "SELECT %s AS a, %s AS b FROM 't' WHERE %s" % (expression(), expression(), expression())
        return text[:rnd.randrange(len(text) + 1)]
    if kind == 1:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(40))).decode('utf-8', 'replace')
    if kind == 2:
        text = bytearray(("SELECT %s FROM 't'" % expression()).encode())
        for _ in range(3):
            text[rnd.randrange(len(text))] = rnd.choice(b"'\"()[]*.,\\ `$-e0")
        return text.decode('utf-8', 'replace')
    if kind == 3:
        return "SELECT %s FROM 't'" % ", ".join("%s AS c%d" % (rnd.choice(PATHS), i) for i in range(rnd.choice([1, 64, 70])))
    if kind == 4:
        return "SELECT VALUE %s FROM 't'" % expression()
    return "SELECT %s AS a, %s FROM 't'" % (expression(), rnd.choice(PATHS + ['*']))


# The names that are SQL identifiers as they are written, and what `SELECT *, <text> AS key` adds,
# as Python reads it back.
IDENTIFIERS = [name for name in NAMES if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)]
ADDED = {"7": 7, "'é\"x'": 'é"x', "null": None, "true": True, "2.50": 2.5, "1.0": 1, "-0": 0, "[1, 'a']": [1, "a"]}

TEMPLATES = ["out/${topic(2)}", "${temperature}", "${", "${}", "${device.id}/${get(r, 0)}", "$${x}",
             "${" + "(" * 100, "${encode(*, 'base64')}", "x" * 1000]


requests, expectations = [], []
for _ in range(args.lines):
    request = {"sql": statement(), "topic": rnd.choice(["t", "t/a", "t/a/b/c/d"])}
    expectation = None
    kind = rnd.random()
    if kind < 0.1:
        document = fuzzing.document(rnd, NAMES)
        request = {"sql": "SELECT * FROM 't'", "topic": "t", "payload": document}
        expectation = ("json", document)
    elif kind < 0.15:
        # `SELECT *` and more, or more and `*`; the document as Python writes it compactly (passed
        # through, respelled or rebuilt).
        document = fuzzing.document(rnd, NAMES)
        if rnd.random() < 0.7:  # mostly objects, whose names the added keys may repeat
            document = {rnd.choice(IDENTIFIERS[:4]) + str(i): fuzzing.document(rnd, NAMES, 1)
                        for i in range(rnd.randrange(5))}
        added = {}
        for _ in range(rnd.randrange(1, 4)):
            added[rnd.choice(IDENTIFIERS[:4]) + str(rnd.randrange(5))] = rnd.choice(list(ADDED))
        members = dict(document) if isinstance(document, dict) else {}
        values = {key: ADDED[text] for key, text in added.items()}
        items = ", ".join("%s AS %s" % (text, key) for key, text in added.items())
        if rnd.random() < 0.5:  # `*` first: the added keys set in place or appended
            merged, sql = members, "SELECT *, %s FROM 't'" % items
            merged.update(values)
        else:  # `*` last: the payload's members set in place or appended
            merged, sql = values, "SELECT %s, * FROM 't'" % items
            merged.update(members)
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=rnd.random() < 0.5)
        request = {"sql": sql, "topic": "t",
                   "payload_base64": base64.b64encode(text.encode('utf-8', 'surrogatepass')).decode()}
        expectation = ("json", merged)
    elif kind < 0.2:
        # Payload paths as SELECT items, with a value of the statement's own: the document's members
        # (arrays and objects copied as their bytes when spelled as the writer would spell them).
        document = {rnd.choice(IDENTIFIERS[:4]) + str(i): fuzzing.document(rnd, NAMES, 1)
                    for i in range(rnd.randrange(5))}
        names = rnd.sample([name + str(i) for name in IDENTIFIERS[:4] for i in range(5)], rnd.randrange(1, 4))
        expected = {"k%d" % index: document[name] for index, name in enumerate(names) if name in document}
        expected["t"] = "t"
        items = ", ".join("%s AS k%d" % (name, index) for index, name in enumerate(names))
        text = json.dumps(document, separators=(",", ":") if rnd.random() < 0.8 else (", ", ": "),
                          ensure_ascii=rnd.random() < 0.5)
        sql = "SELECT %s, topic() AS t FROM 't'" % items
        if document and rnd.random() < 0.3:  # `SELECT VALUE name`: that member itself
            name = rnd.choice(list(document))
            sql, expected = "SELECT VALUE %s FROM 't'" % name, document[name]
        request = {"sql": sql, "topic": "t",
                   "payload_base64": base64.b64encode(text.encode('utf-8', 'surrogatepass')).decode()}
        expectation = ("json", expected)
    elif kind < 0.25:
        data = bytes([rnd.choice(fuzzing.NOT_JSON_FIRST)]) + payload()
        request = {"sql": "SELECT * FROM 't'", "topic": "t", "payload_base64": base64.b64encode(data).decode()}
        expectation = ("bytes", data)
    else:
        request["payload_base64"] = base64.b64encode(payload()).decode()
        if rnd.random() < 0.1:
            request["sql_version"] = rnd.choice(["2015-10-08", "beta", "2016-03-23"])
        if rnd.random() < 0.15:
            request["template"] = rnd.choice(TEMPLATES)
    line = json.dumps(request, ensure_ascii=rnd.random() < 0.5)
    if expectation is None and rnd.random() < 0.01:
        line = line[:rnd.randrange(1, len(line))]  # never blank: a blank line is no request
    requests.append(line.encode('utf-8', 'surrogatepass'))
    expectations.append(expectation)


def problem(index, answer):
    if not isinstance(answer, dict) or len(answer) == 0:
        return "not an answer object"
    expectation = expectations[index]
    if "error" in answer:
        error = answer["error"]
        if error.get("kind") not in ("parse", "compile", "runtime", "input") or not error.get("message"):
            return "error without a kind and a message"
        return None if expectation is None else "an error where SELECT * matches"
    if answer.get("match") is False:
        if len(answer) != 1:
            return "a no-match with more keys"
        return None if expectation is None else "no match where SELECT * matches"
    if answer.get("match") is not True or ("payload" in answer) == ("payload_base64" in answer):
        return "a match without one payload"
    if expectation is None:
        return None
    compared[expectation[0]] += 1
    got = base64.b64decode(answer["payload_base64"]) if "payload_base64" in answer else answer["payload"].encode()
    return None if fuzzing.passed_as(got, expectation) else "SELECT * gave %r" % got[:200]


failures = 0
compared = {"json": 0, "bytes": 0}
for start in range(0, len(requests), args.chunk):
    chunk = requests[start:start + args.chunk]
    process = subprocess.run([args.bin, "eval", "--batch", "-"], input=b"\n".join(chunk) + b"\n",
                             capture_output=True, timeout=600)
    stderr = process.stderr.decode('utf-8', 'replace')
    where = "lines %d-%d" % (start + 1, start + len(chunk))
    if process.returncode != 0 or "Sanitizer" in stderr or "Fatal error" in stderr:
        print("%s: exit %d\n%s" % (where, process.returncode, stderr[-4000:]))
        failures += 1
        continue
    answers = [line for line in process.stdout.split(b"\n") if line.strip()]
    if len(answers) != len(chunk):
        print("%s: %d answers to %d lines" % (where, len(answers), len(chunk)))
        failures += 1
        continue
    for offset, line in enumerate(answers):
        try:
            answer = json.loads(line)
        except ValueError as error:
            answer, reason = None, "not JSON (%s)" % error
        else:
            reason = problem(start + offset, answer)
        if reason:
            print("line %d: %s\n  in:  %s\n  out: %s" % (start + offset + 1, reason, chunk[offset][:300], line[:300]))
            failures += 1
wanted = {"json": 0, "bytes": 0}
for expectation in expectations:
    if expectation:
        wanted[expectation[0]] += 1
if not failures and compared != wanted:
    print("compared %r of the expected %r" % (compared, wanted))
    failures += 1
if failures:
    sys.exit("fuzz_eval: %d problems over %d lines (seed %d)" % (failures, len(requests), args.seed))
print("fuzz_eval: ok, %d lines (seed %d): %d documents read back through SELECT *, %d binary payloads passed"
      " through unchanged" % (len(requests), args.seed, compared["json"], compared["bytes"]))
