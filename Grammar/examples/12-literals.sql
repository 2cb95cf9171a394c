SELECT 15 AS i, -5 AS neg, 1.5 AS d, 5E-12 AS tiny, 2.5e3 AS big, true AS t, FALSE AS f, Null AS n FROM 'lit'
