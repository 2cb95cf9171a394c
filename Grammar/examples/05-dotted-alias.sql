SELECT true AS state.reported.alarm, temp AS state.reported.temp FROM '$aws/things/+/shadow/update'
