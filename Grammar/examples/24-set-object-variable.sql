SET @device_sensor_data = device1.deviceData.sensors, @t = @device_sensor_data.temp_fahrenheit
SELECT @t AS temp_fahrenheit, @device_sensor_data.humidity AS humidity FROM 'devices/+'
