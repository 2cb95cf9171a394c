SELECT (SELECT VALUE n FROM e) AS sensors FROM 'senml'
