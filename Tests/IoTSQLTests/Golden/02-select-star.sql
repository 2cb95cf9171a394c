SELECT *, 15 AS speed FROM 'topic/subtopic'
