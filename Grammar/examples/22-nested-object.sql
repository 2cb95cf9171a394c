SELECT (select a, b from data2) AS obj, (select value c from data2) AS arr FROM 'nested'
