enum TimeFunctions { static let specs: [FunctionSpec] = [] }
