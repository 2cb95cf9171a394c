SELECT color,(SELECT VALUE r FROM readings r WHERE r>10)AS high FROM 'sensors/+/data' WHERE temperature>1AND color='red'
