SELECT CASE WHEN temp > 30 THEN 'hot' WHEN temp < 10 THEN 'cold' END AS feel FROM 'weather'
