SELECT (SELECT v FROM e WHERE n = 'temperature') AS t FROM 'senml'
