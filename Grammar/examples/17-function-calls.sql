SELECT md5(deviceid) AS hashed_id, concat(a, 'b', 3) AS c, Round(1.5) AS r, get(*, 'my-key') AS k FROM 'fn'
