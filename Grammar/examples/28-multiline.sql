SELECT
    temperature,
    humidity AS h
FROM
    'building/+/floor/+/sensor'
WHERE
    temperature > 25
    AND building.name = "HQ"
