SELECT VALUE cast(reading AS Double) * 1.0 FROM 'legacy/#' WHERE isNull(error)
