import Foundation

/// The math functions of the AWS reference.
///
/// `acos`, `asin`, `atan`, `atan2`, `cosh`, `sinh` and `tanh` are Java's StrictMath bit for bit
/// (``JavaMath``): `java.lang.Math` hands these to StrictMath on every platform. The others are the
/// system's (glibc), which agrees with HotSpot's own `Math` code for `sin`, `cos`, `tan`, `exp`,
/// `ln` and `power` in all but 0.1-0.3% of arguments (measured against OpenJDK 17 on x86-64).
///
/// Policy: arguments are Int, Decimal or numeric strings (the strict pattern); Boolean, Array,
/// Object, Null, Undefined and non-numeric strings give Undefined (except `nanvl`). The "double
/// precision" functions compute in `Double` and return a Decimal built from the double's shortest
/// text; NaN, infinities (`ln(0)`, `acos(2)`) give Undefined. Whole results become Int under
/// 2016-03-23.
enum MathFunctions {
  static let specs: [FunctionSpec] =
    [
      FunctionSpec(
        name: "abs", family: "math", arity: 1...1, signature: "abs(number) -> Int|Decimal",
        help: "The absolute value; Int stays Int, Decimal and numeric strings give Decimal."
      ) { call in
        switch call[0] {
        case .int(let int):
          return int == Int.min ? .decimal(-SQLDecimal(int)) : .int(Swift.abs(int))
        case .decimal(let decimal):
          return .decimal(decimal.magnitude)
        case .string:
          guard let decimal = Coercions.toDecimal(call[0]) else { return .undefined }
          return Coercions.normalized(.decimal(decimal.magnitude), version: call.version)
        default: return .undefined
        }
      },
      unaryDouble("acos", "The inverse cosine in radians; outside [-1, 1] Undefined.", JavaMath.acos),
      unaryDouble("asin", "The inverse sine in radians; outside [-1, 1] Undefined.", JavaMath.asin),
      unaryDouble("atan", "The inverse tangent in radians.", JavaMath.atan),
      FunctionSpec(
        name: "atan2", family: "math", arity: 2...2, signature: "atan2(y, x) -> Decimal",
        help: "The angle in radians between the positive x axis and the point (x, y)."
      ) { call in
        guard let y = Coercions.toDouble(call[0]), let x = Coercions.toDouble(call[1]) else {
          return .undefined
        }
        return Coercions.doubleResult(JavaMath.atan2(y, x), version: call.version)
      },
      rounding("ceil", "Rounds up to the nearest Int.", .up),
      unaryDouble("cos", "The cosine of an angle in radians.", Foundation.cos),
      unaryDouble("cosh", "The hyperbolic cosine.", JavaMath.cosh),
      unaryDouble("exp", "e raised to the argument.", Foundation.exp),
      rounding("floor", "Rounds down to the nearest Int.", .down),
      unaryDouble("ln", "The natural logarithm; Undefined for 0 and negatives.", Foundation.log),
      unaryDouble("log", "The base-10 logarithm; Undefined for 0 and negatives.", Foundation.log10),
      FunctionSpec(
        name: "mod", family: "math", arity: 2...2, signature: "mod(a, b) -> Int|Decimal",
        help: "The remainder of a / b with the sign of a, as the % operator; b = 0 gives Undefined."
      ) { call in Operators.binary(.remainder, call[0], call[1], version: call.version) },
      FunctionSpec(
        name: "nanvl", family: "math", arity: 2...2, signature: "nanvl(value, fallback) -> Any",
        help: "The fallback when value is Undefined, Null or NaN; otherwise value."
      ) { call in
        switch call[0] {
        case .undefined, .null: return call[1]
        default: return call[0]
        }
      },
      FunctionSpec(
        name: "power", family: "math", arity: 2...2, signature: "power(base, exponent) -> Decimal",
        help: "base raised to exponent, in double precision."
      ) { call in
        guard let base = Coercions.toDouble(call[0]), let exponent = Coercions.toDouble(call[1]) else {
          return .undefined
        }
        return Coercions.doubleResult(Foundation.pow(base, exponent), version: call.version)
      },
      FunctionSpec(
        name: "rand", family: "math", arity: 0...0, isDeterministic: false, signature: "rand() -> Decimal",
        help: "A pseudo-random double, uniformly distributed in [0.0, 1.0)."
      ) { call in
        Coercions.doubleResult(
          call.context.randomness?.nextDouble() ?? Double.random(in: 0..<1), version: call.version)
      },
      FunctionSpec(
        name: "remainder", family: "math", arity: 2...2, signature: "remainder(a, b) -> Int|Decimal",
        help: "The same as mod(a, b) and the % operator."
      ) { call in Operators.binary(.remainder, call[0], call[1], version: call.version) },
      rounding("round", "Rounds to the nearest Int, halves away from zero.", .plain),
      FunctionSpec(
        name: "sign", family: "math", arity: 1...1, signature: "sign(number) -> Int",
        help: "-1, 0 or 1 as the number is negative, zero or positive."
      ) { call in
        if case .int(let int) = call[0] { return .int(int.signum()) }
        guard let decimal = Coercions.toDecimal(call[0]) else { return .undefined }
        return .int(decimal.isZero ? 0 : (decimal.isNegative ? -1 : 1))
      },
      unaryDouble("sin", "The sine of an angle in radians.", Foundation.sin),
      unaryDouble("sinh", "The hyperbolic sine.", JavaMath.sinh),
      unaryDouble("sqrt", "The square root; Undefined for negatives.", Foundation.sqrt),
      unaryDouble("tan", "The tangent of an angle in radians.", Foundation.tan),
      unaryDouble("tanh", "The hyperbolic tangent.", JavaMath.tanh),
      FunctionSpec(
        name: "trunc", family: "math", arity: 2...2, signature: "trunc(number, places) -> Int|Decimal",
        help: "Cuts number to places decimal places (clamped to 0...34); trailing zeros dropped."
      ) { call in
        let places: Int
        switch call[1] {
        case .int, .decimal: places = Swift.min(Swift.max(Coercions.toFlooredInt(call[1])!, 0), 34)
        default: return .undefined
        }
        if case .int = call[0] { return call[0] }
        guard let decimal = Coercions.toDecimal(call[0]) else { return .undefined }
        let cut = DecimalMath.truncated(decimal, scale: places)
        // "Trailing zeroes are stripped from the result": a whole result prints as an integer in
        // both versions (`trunc(2.3, 0)` is 2, as the guide shows, not 2015-10-08's `2.0`).
        if let whole = DecimalMath.exactInt(cut) { return .int(whole) }
        return .decimal(cut)
      },
    ]

  /// A one-argument double-precision function.
  private static func unaryDouble(
    _ name: String, _ help: String, _ function: @escaping @Sendable (Double) -> Double
  ) -> FunctionSpec {
    FunctionSpec(
      name: name, family: "math", arity: 1...1, signature: "\(name)(number) -> Decimal", help: help
    ) { call in
      guard let argument = Coercions.toDouble(call[0]) else { return .undefined }
      return Coercions.doubleResult(function(argument), version: call.version)
    }
  }

  /// ceil, floor and round: Int unchanged, Decimal and numeric strings rounded to an Int.
  private static func rounding(
    _ name: String, _ help: String, _ mode: NSDecimalNumber.RoundingMode
  ) -> FunctionSpec {
    FunctionSpec(name: name, family: "math", arity: 1...1, signature: "\(name)(number) -> Int", help: help) {
      call in
      if case .int = call[0] { return call[0] }
      guard let decimal = Coercions.toDecimal(call[0]) else { return .undefined }
      return DecimalMath.integerValue(DecimalMath.rounded(decimal, mode))
    }
  }
}
