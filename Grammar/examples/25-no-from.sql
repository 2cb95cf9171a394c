SELECT clientid() AS client WHERE isUndefined(missing) = false
