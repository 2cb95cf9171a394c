SELECT t.c * 9 / 5 + 32 AS f, (a - b) % 7 AS r, -delta AS neg FROM 'sensors/+/temp' WHERE t.c > 20
