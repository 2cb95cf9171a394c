SELECT deviceId, (SELECT VALUE r * 2 FROM readings AS r WHERE r > 10) AS doubled
FROM 'sensors/+/batch'
WHERE EXISTS (SELECT * FROM alarms AS a WHERE a.level = 'critical')
