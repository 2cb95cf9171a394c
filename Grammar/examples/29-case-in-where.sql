SELECT * FROM 'traffic/light' WHERE CASE color WHEN 'red' THEN true ELSE false END
