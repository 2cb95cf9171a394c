SELECT temp, humidity FROM 'sensors/+/env'
WHERE temp > 30 AND humidity <= 80 OR temp <> 99 AND humidity != 0 OR temp >= 100 AND temp < 200
