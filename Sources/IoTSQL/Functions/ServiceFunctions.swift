/// The functions that call an AWS service. They are in the catalogue so that a rule ported from
/// AWS gets a clear compile error (`unavailableReason`) instead of "unknown function"; their
/// implementation, never reached past the checker, gives Undefined.
enum ServiceFunctions {
  static let specs: [FunctionSpec] = [
    unavailable(
      "aws_lambda", 2...2, .v2015_10_08, "aws_lambda(functionArn, inputJson) -> Any",
      "Calls a Lambda function with a JSON input.", service: "Lambda"),
    unavailable(
      "get_dynamodb", 4...6, .v2016_03_23,
      "get_dynamodb(table, partitionKeyName, partitionKeyValue[, sortKeyName, sortKeyValue], roleArn) -> Object",
      "Reads an item from a DynamoDB table.", service: "DynamoDB"),
    unavailable(
      "get_thing_shadow", 2...3, .v2016_03_23, "get_thing_shadow(thingName[, shadowName], roleArn) -> Object",
      "Reads a thing's device shadow.", service: "IoT Device Shadow"),
    unavailable(
      "get_registry_data", 3...3, .v2015_10_08, "get_registry_data(api, thingName, roleArn) -> Object",
      "Reads a thing's data from the IoT registry.", service: "IoT registry"),
    unavailable(
      "machinelearning_predict", 3...3, .v2015_10_08,
      "machinelearning_predict(modelId, roleArn, record) -> Object",
      "Asks an Amazon Machine Learning model for a prediction.", service: "Machine Learning"),
  ]

  private static func unavailable(
    _ name: String, _ arity: ClosedRange<Int>, _ version: SQLVersion, _ signature: String, _ help: String,
    service: String
  ) -> FunctionSpec {
    FunctionSpec(
      name: name, family: "service", arity: arity, minimumVersion: version, isDeterministic: false,
      signature: signature, help: help,
      unavailableReason: "\(name)() needs the AWS service \(service), which this engine does not call"
    ) { _ in .undefined }
  }
}
