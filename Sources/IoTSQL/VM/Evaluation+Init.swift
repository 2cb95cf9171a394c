// ADDITION by the daemon branch: code outside IoTSQL (error records, test fakes) must build an
// Evaluation, whose memberwise initializer is internal. Remove this file if the core gains a public one.

extension Evaluation {
  /// Creates an evaluation from its parts: the output payload bytes, its value, the SET variables.
  public init(output payload: [UInt8], value: Value, variables: [Value] = []) {
    self.init(payload: payload, value: value, variables: variables)
  }
}
