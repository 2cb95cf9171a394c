SELECT 'single', "double", 'it''s', 'tab\there', "quote \" inside", '\u00e9t\u00e9' AS summer FROM 'strings'
