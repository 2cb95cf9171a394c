SELECT cast(topic(2) AS DECIMAL) AS id, CAST(flag AS Int) AS n FROM 'devices/+/x'
