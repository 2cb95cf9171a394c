select not a, NOT (a = b) AS ne from 'x/y' where not flag
