SELECT state.reported.value AS state.desired.value, a.end AS x.select FROM 'shadow'
