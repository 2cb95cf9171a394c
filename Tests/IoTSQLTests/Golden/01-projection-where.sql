SELECT color AS rgb, temperature FROM 'topic/subtopic' WHERE temperature > 50
