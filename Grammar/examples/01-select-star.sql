SELECT * FROM 'iot/test'
