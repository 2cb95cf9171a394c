SELECT 1 + 2 * 3 AS seven, concat('a', 'b') AS ab, temp * (4.5 / 2.5) + 32 AS f FROM 't/#'
