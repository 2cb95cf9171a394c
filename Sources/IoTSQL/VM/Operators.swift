import Foundation

/// The operator tables of the AWS IoT SQL reference: what each operator gives for each pair of types.
/// None of them throws: a combination the tables do not list gives `.undefined`.
public enum Operators {
  /// `a op b` for every binary operator (AND/OR are evaluated eagerly: AWS has no short-circuit).
  public static func binary(_ op: BinaryOperator, _ a: Value, _ b: Value, version: SQLVersion) -> Value {
    switch op {
    case .and, .or:
      guard let left = Coercions.toBool(a), let right = Coercions.toBool(b) else { return .undefined }
      return .bool(op == .and ? left && right : left || right)
    case .equal: return equals(a, b)
    case .notEqual:
      if case .bool(let equal) = equals(a, b) { return .bool(!equal) }
      return .undefined
    case .less, .lessOrEqual, .greater, .greaterOrEqual:
      guard let order = compare(a, b) else { return .undefined }
      switch op {
      case .less: return .bool(order < 0)
      case .lessOrEqual: return .bool(order <= 0)
      case .greater: return .bool(order > 0)
      default: return .bool(order >= 0)
      }
    case .in:
      guard !a.isUndefined, case .array(let elements) = b else { return .undefined }
      for element in elements where equals(a, element) == .bool(true) { return .bool(true) }
      return .bool(false)
    case .add:
      if case .string(let left) = a {
        guard let right = Coercions.toText(b) else { return .undefined }
        return .string(left + right)
      }
      if case .string(let right) = b {
        guard let left = Coercions.toText(a) else { return .undefined }
        return .string(left + right)
      }
      return arithmetic(op, a, b, version: version, acceptsStrings: false)
    case .subtract, .multiply, .divide, .remainder:
      return arithmetic(op, a, b, version: version, acceptsStrings: true)
    }
  }

  /// `-a` and `NOT a`.
  public static func unary(_ op: UnaryOperator, _ a: Value, version: SQLVersion) -> Value {
    switch op {
    case .not:
      guard let bool = Coercions.toBool(a) else { return .undefined }
      return .bool(!bool)
    case .exists:
      // A nested query's result: the array of its elements' results, or an object source's one
      // result; Undefined when the source was neither. Never Undefined itself.
      if case .array(let results) = a { return .bool(!results.isEmpty) }
      return .bool(!a.isUndefined)
    case .negate:
      switch a {
      case .int(let int):
        let (negated, overflow) = (0 as Int).subtractingReportingOverflow(int)
        return overflow ? .decimal(-SQLDecimal(int)) : .int(negated)
      case .decimal(let decimal):
        // A whole result follows the whole-number rule, as a numeric string's does; an Int beyond
        // 64 bits stays an Int under 2015-10-08 too (`-v` of 2^63 is Int.min, as `0 - v` is).
        return Coercions.normalized(.decimal(-decimal), version: isWideInt(a) ? .v2016_03_23 : version)
      case .string:
        guard let decimal = Coercions.toDecimal(a) else { return .undefined }
        return Coercions.normalized(.decimal(-decimal), version: version)
      default: return .undefined
      }
    }
  }

  /// The equality CASE uses to pick a branch: `=`'s table, `.undefined` when either side is Undefined.
  public static func equals(_ a: Value, _ b: Value) -> Value {
    if a.isUndefined || b.isUndefined { return .undefined }
    return .bool(strictlyEqual(a, b))
  }

  /// True only for `.bool(true)` or the string "true" in any case: what lets WHERE pass.
  public static func isTrue(_ a: Value) -> Bool {
    switch a {
    case .bool(let bool): return bool
    case .string(let text): return Coercions.booleanText(text) == true
    default: return false
    }
  }

  // MARK: - Equality

  /// `=` for two defined values: numbers numerically (Int widened to Decimal), strings code unit by
  /// code unit, arrays element-wise in order, objects by keys and values in any order, Null equal to
  /// Null; mismatched types are unequal.
  static func strictlyEqual(_ a: Value, _ b: Value) -> Bool {
    switch (a, b) {
    case (.int(let x), .int(let y)): return x == y
    case (.int, .decimal), (.decimal, .int), (.decimal, .decimal):
      if let x = SmallDecimal(a), let y = SmallDecimal(b) { return SmallDecimal.compare(x, y) == 0 }
      switch (a, b) {
      case (.int(let x), .decimal(let y)): return SQLDecimal(x) == y
      case (.decimal(let x), .int(let y)): return x == SQLDecimal(y)
      case (.decimal(let x), .decimal(let y)): return x == y
      default: return false
      }
    case (.string(let x), .string(let y)): return OrderedObject.sameName(x, y)
    case (.bool(let x), .bool(let y)): return x == y
    case (.null, .null): return true
    case (.binary(let x), .binary(let y)): return x == y
    case (.array(let x), .array(let y)):
      guard x.count == y.count else { return false }
      for (left, right) in zip(x, y) {
        if left.isUndefined || right.isUndefined || !strictlyEqual(left, right) { return false }
      }
      return true
    case (.object(let x), .object(let y)):
      let left = x.members.filter { !$0.1.isUndefined }
      let right = y.members.filter { !$0.1.isUndefined }
      guard left.count == right.count else { return false }
      if y.count > 16 {
        // Hashed once: a lookup per key made `o = o` over 16,000 keys take a second.
        let positions = y.positionsByKey()
        for (key, value) in left {
          guard let index = positions[MemberName(key)], case let other = y.values[index], !other.isUndefined,
            strictlyEqual(value, other)
          else { return false }
        }
        return true
      }
      for (key, value) in left {
        guard let other = y[key], !other.isUndefined, strictlyEqual(value, other) else { return false }
      }
      return true
    default: return false
    }
  }

  // MARK: - Ordering

  /// -1, 0 or 1 after converting both sides to Decimal; nil when either side does not convert.
  static func compare(_ a: Value, _ b: Value) -> Int? {
    if case .int(let x) = a, case .int(let y) = b { return x < y ? -1 : (x == y ? 0 : 1) }
    if let x = SmallDecimal(a), let y = SmallDecimal(b) { return SmallDecimal.compare(x, y) }
    guard let x = Coercions.toDecimal(a), let y = Coercions.toDecimal(b) else { return nil }
    return x < y ? -1 : (x == y ? 0 : 1)
  }

  // MARK: - Arithmetic

  /// `- * / %` (and `+` on numbers): Int∘Int gives Int (overflow moves to Decimal, never traps);
  /// any Decimal gives Decimal; numeric strings are parsed when `acceptsStrings`. Division and
  /// remainder by zero give Undefined. See Grammar/README.md for `/` on two Ints.
  static func arithmetic(
    _ op: BinaryOperator, _ a: Value, _ b: Value, version: SQLVersion, acceptsStrings: Bool
  ) -> Value {
    if case .int(let x) = a, case .int(let y) = b {
      if let result = intArithmetic(op, x, y) { return result }
    }
    // Under 2015-10-08, where a whole Decimal stays a Decimal, an Int beyond 64 bits is held as a
    // whole Decimal all the same: Int∘Int is an Int there too (AWS's Int holds 34 digits), so
    // `12345678901234567890 % 7` is 1, not 1.0.
    if version < .v2016_03_23, isWideInt(a) || isWideInt(b), isIntegral(a), isIntegral(b) {
      return arithmetic(op, a, b, version: .v2016_03_23, acceptsStrings: acceptsStrings)
    }
    if let result = smallArithmetic(op, a, b, version: version) { return result }
    let left: SQLDecimal
    let right: SQLDecimal
    switch (a, b) {
    case (.int, .int), (.int, .decimal), (.decimal, .int), (.decimal, .decimal):
      left = Coercions.toDecimal(a)!
      right = Coercions.toDecimal(b)!
    case (.string, .int), (.string, .decimal), (.string, .string), (.int, .string), (.decimal, .string):
      guard acceptsStrings, let x = Coercions.toDecimal(a), let y = Coercions.toDecimal(b) else {
        return .undefined
      }
      left = x
      right = y
    default:
      return .undefined
    }
    let result: SQLDecimal?
    switch op {
    case .add: result = DecimalMath.add(left, right)
    case .subtract: result = DecimalMath.subtract(left, right)
    case .multiply: result = DecimalMath.multiply(left, right)
    case .divide:
      // Int / Int is an Int (truncated) for Ints beyond 64 bits too.
      result =
        isIntegral(a) && isIntegral(b)
        ? DecimalMath.wholeQuotient(left, right) : DecimalMath.divide(left, right)
    case .remainder: result = DecimalMath.remainder(left, right)
    default: result = nil
    }
    guard let result else { return .undefined }
    return Coercions.normalized(.decimal(result), version: version)
  }

  /// A whole Decimal beyond 64 bits within AWS's 34 Int digits: an Int literal or result too wide for
  /// `Int`.
  static func isWideInt(_ value: Value) -> Bool {
    guard case .decimal(let decimal) = value, DecimalMath.isWhole(decimal),
      DecimalMath.exactInt(decimal) == nil
    else { return false }
    return decimal.magnitude < wideIntLimit
  }

  /// An Int, or a whole Decimal that stands for one (``isWideInt(_:)``).
  static func isIntegral(_ value: Value) -> Bool {
    if case .int = value { return true }
    return isWideInt(value)
  }

  private static let wideIntLimit = SQLDecimal.exact(negative: false, significand: 1, exponent: 34)!

  /// `+ - *` on Ints and Decimals with 64-bit significands, exactly; nil when the operation or the
  /// operands are not for the fast path, or the result needs rounding (see ``SmallDecimal``).
  @inline(__always)
  private static func smallArithmetic(_ op: BinaryOperator, _ a: Value, _ b: Value, version: SQLVersion)
    -> Value?
  {
    guard op == .add || op == .subtract || op == .multiply, let x = SmallDecimal(a), let y = SmallDecimal(b)
    else { return nil }
    let exact: (Bool, UInt128, Int)?
    switch op {
    case .multiply: exact = SmallDecimal.multiply(x, y)
    default: exact = SmallDecimal.add(x, y, subtract: op == .subtract)
    }
    guard let (negative, significand, exponent) = exact else { return nil }
    return DecimalMath.value(
      negative: negative, significand: significand, exponent: exponent, version: version)
  }

  /// Int∘Int; nil when the result overflows and must be computed in Decimal.
  private static func intArithmetic(_ op: BinaryOperator, _ x: Int, _ y: Int) -> Value? {
    let result: (partialValue: Int, overflow: Bool)
    switch op {
    case .add: result = x.addingReportingOverflow(y)
    case .subtract: result = x.subtractingReportingOverflow(y)
    case .multiply: result = x.multipliedReportingOverflow(by: y)
    case .divide:
      if y == 0 { return .undefined }
      // The operator table's Int, truncated toward zero as Java's `long` division (see
      // Grammar/README.md); `Int.min / -1` overflows into a wide Int.
      result = x.dividedReportingOverflow(by: y)
    case .remainder:
      if y == 0 { return .undefined }
      result = x.remainderReportingOverflow(dividingBy: y)
      if result.overflow { return .int(0) }  // Int.min % -1
    default: return nil
    }
    return result.overflow ? nil : .int(result.partialValue)
  }
}
