"""What the fuzzers share: their command line, documents Python writes and reads back as themselves,
hostile payloads and what `SELECT *` makes of them, their comparisons, and the handling of the
processes a fuzzer starts."""
import argparse
import base64
import json
import os
import random
import signal
import time

# Bytes a JSON text (or one after a byte order mark) cannot start with: a payload starting with one is
# Binary, and `SELECT *` passes it through unchanged.
NOT_JSON_FIRST = [byte for byte in range(256) if byte not in set(b' \t\r\n{["-0123456789tfn\xef')]


def arguments(count, default, chunk=None):
    """A fuzzer's command line, BIN --COUNT N --seed S [--chunk C], and a Random seeded by it. BIN is
    made absolute when it names a path (the daemon fuzzers run in a folder of their own)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("bin")
    parser.add_argument("--" + count, type=int, default=default)
    parser.add_argument("--seed", type=int, default=41)
    if chunk is not None:
        parser.add_argument("--chunk", type=int, default=chunk)
    args = parser.parse_args()
    args.bin = os.path.abspath(args.bin) if os.sep in args.bin else args.bin
    return args, random.Random(args.seed)


def document(rnd, names=("k",), depth=0):
    """A document Python writes and reads back as itself (no NaN, no lone surrogate, no repeated name)."""
    kind = rnd.randrange(7 if depth < 4 else 5)
    if kind == 0:
        return rnd.randrange(-10**20, 10**20)
    if kind == 1:
        return rnd.choice([0.1, -2.5, 1e-7, 123456.789, 1e300, -0.0, 21.5])
    if kind == 2:
        return rnd.choice(['', 'é', 'a"b\\c', '\u0000\u001f', '𝄞', 'x' * 40])
    if kind == 3:
        return rnd.choice([True, False, None])
    if kind == 4:
        return rnd.randrange(-1000, 1000)
    if kind == 5:
        return [document(rnd, names, depth + 1) for _ in range(rnd.randrange(4))]
    return {rnd.choice(names) + str(i): document(rnd, names, depth + 1) for i in range(rnd.randrange(5))}


def same(a, b):
    """Python's readings of two documents are the same: names in the same order, numbers by value,
    exactly (-0 is 0 and 1.0 is 1, as AWS writes them)."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def read(text):
    """The document `text` holds, as strict RFC 8259 reads it: no NaN or Infinity, no name twice
    in an object (Python's reader takes both); ValueError otherwise."""
    def constant(name):
        raise ValueError("%s is not JSON" % name)

    def members(pairs):
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise ValueError("a name twice in an object")
        return dict(pairs)

    return json.loads(text, parse_constant=constant, object_pairs_hook=members)


def hostile_payload(rnd):
    """A payload for a rule's `SELECT *`, with what the rule passes on: (bytes, ("json", document) |
    ("bytes", bytes that are not JSON) | ("text", JSON text passed through unchanged)). Empty, random
    bytes, an object that never closes, arrays nested around the 512 limit, a 200 KB string, and
    documents."""
    kind = rnd.randrange(6)
    if kind == 0:
        return b"", ("bytes", b"")
    if kind == 1:
        data = bytes([rnd.choice(NOT_JSON_FIRST)]) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(300)))
        return data, ("bytes", data)
    if kind == 2:
        text = json.dumps(document(rnd)).encode()
        data = b"{" + text[:rnd.randrange(len(text) + 1)]  # an object that never closes
        return data, ("bytes", data)
    if kind == 3:
        depth = rnd.choice([511, 512, 513, 600])
        data = b"[" * depth + b"1" + b"]" * depth
        return data, ("bytes", data) if depth > 512 else ("text", data)  # compact: passed through as it is
    if kind == 4 and rnd.random() < 0.1:
        value = {"big": "x" * 200_000}
        return json.dumps(value).encode(), ("json", value)
    value = document(rnd)
    return json.dumps(value, ensure_ascii=rnd.random() < 0.5).encode(), ("json", value)


def passed_as(data, expected):
    """`data`, the payload a rule sent on, is what `SELECT *` makes of the expected payload."""
    kind, value = expected
    if kind != "json":
        return data == value
    try:
        return same(read(data), value)
    except ValueError:
        return False


def archived_as(line, expected):
    """`line`, an archive file's line, holds what `SELECT *` makes of the expected payload (bytes
    that are not JSON as `{"payload_base64": ...}`)."""
    if expected[0] == "bytes":
        return line == json.dumps({"payload_base64": base64.b64encode(expected[1]).decode()},
                                  separators=(",", ":")).encode()
    return passed_as(line, expected)


def received_problems(what, received, expectations, matches):
    """The problems of `received` (archive lines, republished payloads) against `expectations` (the
    second members of `hostile_payload`'s pairs), each once and in order, judged by `matches`
    (`archived_as` or `passed_as`): the count, then the first that differs."""
    problems = []
    if len(received) != len(expectations):
        problems.append("%s: %d for %d payloads" % (what, len(received), len(expectations)))
    for number, (data, expected) in enumerate(zip(received, expectations), 1):
        if not matches(data, expected):
            problems.append("%s %d: %r, expected %r" % (what, number, data[:200], str(expected[1])[:200]))
            break
    return problems


def wait_until(condition, seconds):
    """Polls `condition` every 50 ms for at most `seconds`; its last answer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def stop_daemon(daemon, log_path):
    """Stops the daemon with SIGTERM; the problems: an exit other than 0, a sanitizer or a fatal error
    in its log."""
    daemon.send_signal(signal.SIGTERM)
    status = daemon.wait(timeout=60)
    output = open(log_path, "rb").read().decode("utf-8", "replace")
    if status != 0 or "Sanitizer" in output or "Fatal error" in output:
        return ["run: exit %d\n%s" % (status, output[-4000:])]
    return []


def stop_all(started):
    """Kills, by PID, what a fuzzer started and is still running, the last started first."""
    for process in reversed(started):
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
