import Foundation

/// bitand, bitor, bitxor and bitnot on 64-bit two's complement integers.
///
/// Policy: Decimal arguments and numeric strings are rounded down (toward −∞) to an Int; a value
/// outside Int's range, Boolean, Array, Object, Null, Undefined and non-numeric strings give
/// Undefined.
enum BitwiseFunctions {
  static let specs: [FunctionSpec] = [
    binary("bitand", "The bitwise AND of two Ints.", &),
    binary("bitor", "The bitwise OR of two Ints.", |),
    binary("bitxor", "The bitwise XOR of two Ints.", ^),
    FunctionSpec(
      name: "bitnot", family: "bitwise", arity: 1...1, signature: "bitnot(int) -> Int",
      help: "The bitwise NOT of an Int in two's complement: bitnot(13) is -14."
    ) { call in
      guard let int = integer(call[0]) else { return .undefined }
      return .int(~int)
    },
  ]

  private static func binary(
    _ name: String, _ help: String, _ operation: @escaping @Sendable (Int, Int) -> Int
  ) -> FunctionSpec {
    FunctionSpec(
      name: name, family: "bitwise", arity: 2...2, signature: "\(name)(int, int) -> Int", help: help
    ) {
      call in
      guard let left = integer(call[0]), let right = integer(call[1]) else { return .undefined }
      return .int(operation(left, right))
    }
  }

  /// The argument rounded down to an Int; nil when it is not a number or does not fit.
  private static func integer(_ value: Value) -> Int? {
    switch value {
    case .int(let int): return int
    case .decimal, .string:
      guard let decimal = Coercions.toDecimal(value) else { return nil }
      return DecimalMath.exactInt(DecimalMath.rounded(decimal, .down))
    default: return nil
    }
  }
}
