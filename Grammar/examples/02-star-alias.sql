SELECT * AS message FROM 'sensors/#'
