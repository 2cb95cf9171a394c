SELECT color.red, decode(payload, 'base64').temperature AS t, get(arr, 0).v AS first FROM 'paths'
