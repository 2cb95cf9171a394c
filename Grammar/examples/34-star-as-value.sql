SELECT VALUE *.messages FROM 'batch/+'
