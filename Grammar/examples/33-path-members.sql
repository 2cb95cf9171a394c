SELECT state.reported.*, timestamp() AS time FROM '$aws/things/+/shadow/update/accepted'
