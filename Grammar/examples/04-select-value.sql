SELECT VALUE temperature FROM 'sensors/+/temp'
