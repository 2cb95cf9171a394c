SELECT *, topic() AS topic, timestamp() AS ts FROM 'devices/+/telemetry'
