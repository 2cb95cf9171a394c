#!/usr/bin/env python3
"""Fuzzes `iotrules run` on a Kafka source with hostile payloads through librdkafka's mock cluster,
seeded and bounded, and checks each record is archived and produced on exactly once, in order.

Usage: python3 Tests/fuzz/fuzz_kafka.py BIN [--records N] [--seed S]

`make asan` runs it on the binary built with AddressSanitizer, so librdkafka's buffers (records
consumed, results produced, delivery reports) are read under the sanitizer too. kcat hosts the mock
cluster (`-X test.mock.num.brokers=1`, as the README shows) and produces the records, one file each,
keyed `fz/dev` (the rule topic, `--kafka-topic-from key`); the daemon (`--source kafka://...`) runs one
rule, `SELECT * FROM 'fz/#'`, archiving to a file and producing to the Kafka topic `echo` keyed by
the rule topic; kcat reads `echo` back. Payloads are those of fuzz_mqtt (fuzzing.hostile_payload)
but the empty one, for which kcat sends no record.
Everything started is stopped by its PID. The run fails when:
- the daemon does not exit 0 after SIGTERM, or a sanitizer or a fatal error speaks;
- the archive or the records on `echo` do not hold, in order, each payload once: the document (read
  back by Python) or, for bytes that are not JSON, exactly those bytes.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import fuzzing

args, rnd = fuzzing.arguments("records", 300)


def frames(data):
    """The payloads of kcat's `-f '%S:%s'` output (the length, then the bytes; -1 for none)."""
    payloads, at = [], 0
    while at < len(data):
        colon = data.index(b":", at)
        length = int(data[at:colon])
        payloads.append(data[colon + 1:colon + 1 + max(length, 0)])
        at = colon + 1 + max(length, 0)
    return payloads


problems, started = [], []
workspace = tempfile.mkdtemp(prefix="fuzz_kafka.")
try:
    cluster_log = open(os.path.join(workspace, "cluster.log"), "wb")
    cluster = subprocess.Popen(["kcat", "-C", "-b", "127.0.0.1:1", "-t", "seed", "-X", "test.mock.num.brokers=1",
                                "-d", "mock"], stdout=subprocess.DEVNULL, stderr=cluster_log)
    started.append(cluster)
    def bootstrap():
        log_text = open(os.path.join(workspace, "cluster.log"), "rb").read()
        found = re.search(rb"bootstrap\.servers=(127\.0\.0\.1:\d+)", log_text)
        return found and found.group(1).decode()

    if not fuzzing.wait_until(bootstrap, 20):
        sys.exit("fuzz_kafka: kcat's mock cluster gave no bootstrap.servers within 20 s")
    servers = bootstrap()
    os.makedirs(os.path.join(workspace, "rules"))
    with open(os.path.join(workspace, "rules", "fz.json"), "w") as file:
        json.dump({"sql": "SELECT * FROM 'fz/#'", "actions": [
            {"file": {"path": "out/all.jsonl"}},
            {"kafka": {"destinationArn": "arn:aws:kafka:local", "topic": "echo", "key": "${topic()}",
                       "clientProperties": {"bootstrap.servers": servers}}}]}, file)
    # kcat sends no record for an empty file: the empty payload is fuzz_mqtt's.
    records = []
    while len(records) < args.records:
        record = fuzzing.hostile_payload(rnd)
        if record[0]:
            records.append(record)
    os.makedirs(os.path.join(workspace, "records"))
    paths = []
    for number, (data, _) in enumerate(records):
        paths.append(os.path.join(workspace, "records", "%05d" % number))
        with open(paths[-1], "wb") as file:
            file.write(data)
    subprocess.run(["kcat", "-P", "-b", servers, "-t", "telemetry", "-k", "fz/dev"] + paths, check=True, timeout=120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = open(os.path.join(workspace, "daemon.log"), "wb")
    daemon = subprocess.Popen([args.bin, "run", "--rules", "rules", "--source",
                               "kafka://%s/telemetry?group=fuzz" % servers, "--kafka-config", "auto.offset.reset=earliest",
                               "--dead-letter", "dead-letter.jsonl", "--log-level", "warning"],
                              cwd=workspace, stdout=log, stderr=log)
    started.append(daemon)
    archive = os.path.join(workspace, "out", "all.jsonl")
    fuzzing.wait_until(lambda: os.path.exists(archive) and open(archive, "rb").read().count(b"\n") >= len(records)
               or daemon.poll() is not None, 120)
    time.sleep(0.5)  # the kafka action's deliveries, after the archive's lines
    log.close()
    problems += fuzzing.stop_daemon(daemon, os.path.join(workspace, "daemon.log"))
    archived = open(archive, "rb").read().split(b"\n")[:-1] if os.path.exists(archive) else []
    expectations = [expected for _, expected in records]
    problems += fuzzing.received_problems("archive line", archived, expectations, fuzzing.archived_as)
    echoed = subprocess.run(["kcat", "-C", "-b", servers, "-t", "echo", "-o", "beginning", "-e", "-f", "%S:%s"],
                            capture_output=True, timeout=60).stdout
    problems += fuzzing.received_problems("echo record", frames(echoed), expectations, fuzzing.passed_as)
finally:
    fuzzing.stop_all(started)
    shutil.rmtree(workspace, ignore_errors=True)
if problems:
    print("\n".join(problems))
    sys.exit("fuzz_kafka: %d problems over %d records (seed %d)" % (len(problems), args.records, args.seed))
print("fuzz_kafka: ok, %d records (seed %d): each archived and produced on once, in order" % (args.records, args.seed))
