SELECT * FROM topic/#
