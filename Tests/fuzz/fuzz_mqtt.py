#!/usr/bin/env python3
"""Fuzzes `iotrules run` on an MQTT source with hostile payloads through a real mosquitto, seeded and
bounded, and checks each message is archived and republished exactly once, in order.

Usage: python3 Tests/fuzz/fuzz_mqtt.py BIN [--messages N] [--seed S]

`make asan` runs it on the binary built with AddressSanitizer, so libmosquitto's buffers (payloads
handed to the daemon on the network thread, republished from it) are read under the sanitizer too.
It starts mosquitto on a free loopback port, the daemon (`--source mqtt://...`) with one rule,
`SELECT * FROM 'fz/#'`, archiving to a file and republishing to `echo/${topic(2)}`, and a
`mosquitto_sub` on `echo/#` printing payloads in hex; then publishes N payloads one after another
with `mosquitto_pub -s` at QoS 1: empty, random bytes, truncated and deeply nested JSON, a 200 KB
string, and documents Python writes. Everything started is stopped by its PID. The run fails when:
- the daemon does not exit 0 after SIGTERM, or a sanitizer or a fatal error speaks;
- the archive or the republished stream does not hold, in order, each payload once: the document
  (read back by Python) or, for bytes that are not JSON, exactly those bytes.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import fuzzing

args, rnd = fuzzing.arguments("messages", 300)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


problems, started = [], []
workspace = tempfile.mkdtemp(prefix="fuzz_mqtt.")
try:
    port = free_port()
    with open(os.path.join(workspace, "mosquitto.conf"), "w") as file:
        file.write("listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n" % port
                   + ("user root\n" if os.getuid() == 0 else ""))
    broker = subprocess.Popen(["mosquitto", "-c", os.path.join(workspace, "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started.append(broker)
    if not fuzzing.wait_until(lambda: listening(port), 10):
        sys.exit("fuzz_mqtt: mosquitto did not listen on 127.0.0.1:%d" % port)
    os.makedirs(os.path.join(workspace, "rules"))
    with open(os.path.join(workspace, "rules", "fz.json"), "w") as file:
        json.dump({"sql": "SELECT * FROM 'fz/#'", "actions": [
            {"file": {"path": "out/all.jsonl"}}, {"republish": {"topic": "echo/${topic(2)}", "qos": 1}}]}, file)
    messages = [fuzzing.hostile_payload(rnd) for _ in range(args.messages)]
    echo = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-t", "echo/#", "-q", "1", "-F", "%x",
                             "-C", str(len(messages)), "-W", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    started.append(echo)
    log = open(os.path.join(workspace, "daemon.log"), "wb")
    daemon = subprocess.Popen([args.bin, "run", "--rules", "rules", "--source", "mqtt://127.0.0.1:%d" % port,
                               "--client-id", "fuzz-mqtt", "--clean-session", "--dead-letter", "dead-letter.jsonl",
                               "--log-level", "info"], cwd=workspace, stdout=log, stderr=log)
    started.append(daemon)
    if not fuzzing.wait_until(lambda: b"subscribed on" in open(os.path.join(workspace, "daemon.log"), "rb").read()
                              or daemon.poll() is not None, 30):
        problems.append("the daemon did not subscribe within 30 s")
    for number, (data, _) in enumerate(messages):
        subprocess.run(["mosquitto_pub", "-p", str(port), "-t", "fz/dev", "-q", "1"] + (["-s"] if data else ["-n"]),
                       input=data, check=True, timeout=30)
    archive = os.path.join(workspace, "out", "all.jsonl")
    fuzzing.wait_until(lambda: os.path.exists(archive) and open(archive, "rb").read().count(b"\n") >= len(messages),
                       60)
    log.close()
    problems += fuzzing.stop_daemon(daemon, os.path.join(workspace, "daemon.log"))
    echoed, _ = echo.communicate(timeout=130)
    archived = open(archive, "rb").read().split(b"\n")[:-1] if os.path.exists(archive) else []
    expectations = [expected for _, expected in messages]
    problems += fuzzing.received_problems("archive line", archived, expectations, fuzzing.archived_as)
    republished = [bytes.fromhex(line) for line in echoed.decode().split("\n")[:-1]]  # one hex line each
    problems += fuzzing.received_problems("republished payload", republished, expectations, fuzzing.passed_as)
finally:
    fuzzing.stop_all(started)
    shutil.rmtree(workspace, ignore_errors=True)
if problems:
    print("\n".join(problems))
    sys.exit("fuzz_mqtt: %d problems over %d messages (seed %d)" % (len(problems), args.messages, args.seed))
print("fuzz_mqtt: ok, %d messages (seed %d): each archived and republished once, in order" % (
    args.messages, args.seed))
