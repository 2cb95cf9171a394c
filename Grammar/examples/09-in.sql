SELECT status FROM 'devices/#' WHERE status IN ['error', 'fault'] AND code IN codes
