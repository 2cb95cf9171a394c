SELECT upper(name) AS name, md5(deviceid) AS hashed_id, round(temp) AS t, topic(2) AS device FROM 'things/+'
