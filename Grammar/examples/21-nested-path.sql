SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v AS t FROM 'senml'
