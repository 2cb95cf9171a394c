#!/usr/bin/env python3
"""Writes Rules/samples/sensors.jsonl: a reproducible day of readings from a small fleet.

Eight devices publish `sensors/<id>/data` every few minutes (temperature with a daily cycle, a
few hot spells above 30 °C, humidity, battery), status messages on `sensors/<id>/status`, some
binary frames (`payload_base64`) on `sensors/<id>/raw`, and a handful of malformed lines that the
replay source must report and count. Run: python3 Rules/samples/generate_sensors.py
"""
import base64
import json
import math
import os
import random

random.seed(20240601)
START_MS = 1717200000000  # 2024-06-01T00:00:00Z
DEVICES = [f"dev-{n:02d}" for n in range(1, 9)]
MESSAGES = 3000

out = []
for i in range(MESSAGES):
    device = DEVICES[i % len(DEVICES)]
    ts = START_MS + i * 28_800 + random.randint(0, 5_000)  # about a day in all
    hour = ((ts - START_MS) / 3_600_000) % 24
    base = 22 + 6 * math.sin((hour - 9) / 24 * 2 * math.pi)
    hot = 9 if device in ("dev-03", "dev-07") and 12 <= hour <= 16 else 0
    kind = random.random()
    line = {"topic": f"sensors/{device}/data", "clientId": device, "timestamp": ts}
    if kind < 0.9:
        line["payload"] = {
            "deviceId": device,
            "temp": round(base + hot + random.gauss(0, 1.2), 1),
            "humidity": round(min(100, max(5, 55 - (base - 22) * 2 + random.gauss(0, 4))), 1),
            "battery": max(0, 100 - i // 40 - random.randint(0, 3)),
            "firmware": "1.4.2" if device != "dev-05" else "1.5.0-rc1",
            "location": {"site": "plant-a" if device < "dev-05" else "plant-b", "floor": int(device[-1]) % 3},
        }
    elif kind < 0.97:
        line["topic"] = f"sensors/{device}/status"
        line["payload"] = {"deviceId": device, "status": random.choice(["ok", "ok", "ok", "degraded", "rebooting"]),
                           "uptimeS": i * 29}
    else:
        line["topic"] = f"sensors/{device}/raw"
        frame = bytes([0xA5, 0x5A]) + random.randbytes(14)
        line["payload_base64"] = base64.b64encode(frame).decode()
    out.append(json.dumps(line, separators=(",", ":")))

# Malformed lines, at fixed places, each a different mistake.
bad = [
    '{"topic":"sensors/dev-01/data","payload":{"deviceId":"dev-01","temp":21.5',  # truncated
    'not json at all',
    '{"payload":{"temp":40}}',  # no topic
    '{"topic":"sensors/dev-02/raw","payload_base64":"%%%"}',  # bad base64
    '["sensors/dev-04/data",{"temp":12}]',  # not an object
]
for n, text in enumerate(bad):
    out.insert(400 + n * 500, text)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sensors.jsonl")
with open(path, "w") as f:
    f.write("\n".join(out) + "\n")
print(f"wrote {len(out)} lines ({len(bad)} malformed) to {path}")
