SELECT {'latitude': get(lat_long, 0), 'longitude': get(lat_long, 1)} AS lat_long, {"k": 1, bare: 2} AS o FROM 'gps/+'
