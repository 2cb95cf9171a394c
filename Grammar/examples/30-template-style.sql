SELECT replace(topic(), '/', '-') + '-' + timestamp() AS key FROM 'a/b'
