import Foundation

/// bitand, bitor, bitxor and bitnot on AWS's Ints (up to 34 digits) in two's complement.
///
/// Policy: Decimal arguments and numeric strings are rounded down (toward −∞) to an Int; a whole
/// number beyond 34 digits (AWS's Int), a result beyond them, Boolean, Array, Object, Null, Undefined
/// and non-numeric strings give Undefined. Within 64 bits the work is done on `Int`; beyond, on
/// `Int128` (34 digits need 113 bits), so `bitand(12345678901234567891, 1)` is 1.
enum BitwiseFunctions {
  static let specs: [FunctionSpec] = [
    binary("bitand", "The bitwise AND of two Ints.") { $0 & $1 },
    binary("bitor", "The bitwise OR of two Ints.") { $0 | $1 },
    binary("bitxor", "The bitwise XOR of two Ints.") { $0 ^ $1 },
    FunctionSpec(
      name: "bitnot", family: "bitwise", arity: 1...1, signature: "bitnot(int) -> Int",
      help: "The bitwise NOT of an Int in two's complement: bitnot(13) is -14."
    ) { call in
      if case .int(let int) = call[0] { return .int(~int) }
      guard let int = integer(call[0]) else { return .undefined }
      return result(~int)
    },
  ]

  private static func binary(
    _ name: String, _ help: String, _ operation: @escaping @Sendable (Int128, Int128) -> Int128
  ) -> FunctionSpec {
    FunctionSpec(
      name: name, family: "bitwise", arity: 2...2, signature: "\(name)(int, int) -> Int", help: help
    ) {
      call in
      if case .int(let left) = call[0], case .int(let right) = call[1] {
        // Two 64-bit Ints: the result fits 64 bits too.
        return .int(Int(truncatingIfNeeded: operation(Int128(left), Int128(right))))
      }
      guard let left = integer(call[0]), let right = integer(call[1]) else { return .undefined }
      return result(operation(left, right))
    }
  }

  /// AWS's largest Int magnitude bound: 10^34 (an Int has at most 34 digits).
  static let intBound = SQLDecimal.powersOfTen[SQLDecimal.maximumDigits]

  /// The argument rounded down to a whole number; nil when it is not a number or has more than 34
  /// digits.
  static func integer(_ value: Value) -> Int128? {
    switch value {
    case .int(let int): return Int128(int)
    case .decimal, .string:
      guard let decimal = Coercions.toDecimal(value) else { return nil }
      let whole = DecimalMath.rounded(decimal, .down)
      if whole.isZero { return 0 }
      guard whole.exponent >= 0, whole.exponent < SQLDecimal.maximumDigits else { return nil }
      let (magnitude, overflow) = whole.significand.multipliedReportingOverflow(
        by: SQLDecimal.powersOfTen[whole.exponent])
      guard !overflow, magnitude < intBound else { return nil }
      return whole.isNegative ? -Int128(magnitude) : Int128(magnitude)
    default: return nil
    }
  }

  /// A result as a value: an Int within 64 bits, a whole Decimal up to 34 digits, else Undefined.
  static func result(_ value: Int128) -> Value {
    if let int = Int(exactly: value) { return .int(int) }
    let magnitude = value.magnitude
    guard magnitude < intBound,
      let decimal = SQLDecimal.exact(negative: value < 0, significand: magnitude, exponent: 0)
    else { return .undefined }
    return DecimalMath.integerValue(decimal)
  }
}
