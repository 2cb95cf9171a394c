import Testing

@testable import IoTSQL

/// Every function this branch implements.
private let implemented = [
  "topic", "clientid", "principal", "accountid", "traceid", "sourceip", "timestamp", "newuuid", "sql_version",
  "get_mqtt_property", "get_user_properties", "get_secret", "abs", "acos", "asin", "atan", "atan2", "ceil",
  "cos",
  "cosh", "exp", "floor", "ln", "log", "mod", "nanvl", "power", "rand", "remainder", "round", "sign", "sin",
  "sinh",
  "sqrt", "tan", "tanh", "trunc", "bitand", "bitor", "bitxor", "bitnot", "chr", "concat", "endswith",
  "indexof",
  "length", "lower", "lpad", "ltrim", "numbytes", "replace", "rpad", "rtrim", "startswith", "substring",
  "trim",
  "upper", "get", "get_or_default", "isNull", "isUndefined", "transform", "encode", "decode", "aws_lambda",
  "get_dynamodb", "get_thing_shadow", "get_registry_data", "machinelearning_predict",
]

@Test func everyFunctionIsInTheRegistryOnce() {
  for name in implemented { #expect(FunctionRegistry.lookup(name) != nil, "\(name)") }
  let names = FunctionRegistry.all.map { $0.name.lowercased() }
  #expect(Set(names).count == names.count)
  #expect(FunctionRegistry.lookup("ISUNDEFINED")?.name == "isUndefined")
}

@Test func everyRowHasSignatureAndHelp() {
  for spec in FunctionRegistry.all {
    #expect(spec.signature.hasPrefix(spec.name + "("), "\(spec.name)")
    #expect(!spec.help.isEmpty && !spec.help.contains("\n"), "\(spec.name)")
  }
}

@Test(arguments: [
  ("encode", SQLVersion.v2016_03_23), ("decode", .v2016_03_23), ("indexof", .v2016_03_23),
  ("length", .v2016_03_23), ("numbytes", .v2016_03_23), ("isUndefined", .v2016_03_23),
  ("transform", .v2016_03_23), ("get_dynamodb", .v2016_03_23), ("get_thing_shadow", .v2016_03_23),
  ("abs", .v2015_10_08), ("concat", .v2015_10_08), ("topic", .v2015_10_08), ("isNull", .v2015_10_08),
])
func minimumVersions(_ name: String, _ version: SQLVersion) {
  #expect(FunctionRegistry.lookup(name)?.minimumVersion == version)
}

@Test(arguments: [
  ("aws_lambda", "aws_lambda() needs the AWS service Lambda, which this engine does not call"),
  ("get_dynamodb", "get_dynamodb() needs the AWS service DynamoDB, which this engine does not call"),
  (
    "get_thing_shadow",
    "get_thing_shadow() needs the AWS service IoT Device Shadow, which this engine does not call"
  ),
  (
    "get_registry_data",
    "get_registry_data() needs the AWS service IoT registry, which this engine does not call"
  ),
  (
    "machinelearning_predict",
    "machinelearning_predict() needs the AWS service Machine Learning, which this engine does not call"
  ),
])
func serviceFunctionsAreUnavailable(_ name: String, _ reason: String) {
  let spec = FunctionRegistry.lookup(name)
  #expect(spec?.unavailableReason == reason)
  #expect(spec?.isDeterministic == false)
  #expect(invoke(name, [str("a"), str("b"), str("c")]) == .undefined)
}

@Test(arguments: [("tpoic", "topic"), ("isnul", "isNull"), ("substrng", "substring")])
func suggestions(_ typo: String, _ expected: String) {
  #expect(FunctionRegistry.suggestion(for: typo) == expected)
}

/// The same "did you mean" serves rule files' keys and action kinds, ignoring case.
@Test func closestNames() {
  #expect(FunctionRegistry.closest(to: "Sql", among: ["sql", "actions"]) == "sql")
  #expect(FunctionRegistry.closest(to: "sqllite", among: ["sqlite", "file", "http"]) == "sqlite")
  #expect(FunctionRegistry.closest(to: "bogus", among: ["sqlite", "file", "http"]) == nil)
  #expect(FunctionRegistry.didYouMean("Republish", among: ["republish"]) == "; did you mean 'republish'?")
  #expect(FunctionRegistry.didYouMean("zzz", among: ["republish"]) == "")
}

@Test func onlyServiceFunctionsAreUnavailable() {
  for spec in FunctionRegistry.all where spec.family != "service" {
    #expect(spec.unavailableReason == nil, "\(spec.name)")
  }
}
