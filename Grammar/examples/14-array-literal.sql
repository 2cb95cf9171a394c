SELECT [lat, long] AS lat_long, [] AS empty, [1, 'two', [3]] AS mixed FROM 'gps/+'
