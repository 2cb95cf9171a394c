SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v AS temperature FROM 'my/topic'
