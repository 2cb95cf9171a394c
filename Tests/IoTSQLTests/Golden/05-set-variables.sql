SET @celsius = (fahrenheit - 32) * 5 / 9, @hot = @celsius > 30 SELECT @celsius AS celsius FROM 'sensors/#' WHERE @hot
