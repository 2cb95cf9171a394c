SELECT 1 + 2 * 3 AS seven, concat('a', 'b') AS ab, temp * (9 / 5) + 32 AS f FROM 't/#'
