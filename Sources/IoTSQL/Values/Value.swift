import Foundation

/// An IoT-SQL value: the nine types of the AWS IoT SQL reference (2016-03-23).
///
/// `undefined` is not `null`: a missing key, a failed conversion or a function called with the wrong
/// types is `undefined`, which disappears from objects when they are serialized.
public enum Value: Sendable, Equatable {
  /// No value: a missing key, a failed conversion, a wrong argument.
  case undefined
  /// JSON `null`, a real value.
  case null
  /// A Boolean.
  case bool(Bool)
  /// A whole number that fits in 64 bits. Larger integers are `decimal`.
  case int(Int)
  /// A decimal number: 34 significant digits, 1E-999 to 9.999…E999 in magnitude, as AWS's.
  case decimal(SQLDecimal)
  /// A UTF-8 string.
  case string(String)
  /// A heterogeneous array.
  case array([Value])
  /// An object that keeps its keys in insertion order.
  case object(OrderedObject)
  /// A payload that is not JSON, kept as its bytes.
  case binary([UInt8])

  /// The type name used in messages and by the REPL.
  public var typeName: String {
    switch self {
    case .undefined: "Undefined"
    case .null: "Null"
    case .bool: "Boolean"
    case .int: "Int"
    case .decimal: "Decimal"
    case .string: "String"
    case .array: "Array"
    case .object: "Object"
    case .binary: "Binary"
    }
  }

  /// True for `.undefined`.
  @inlinable public var isUndefined: Bool {
    if case .undefined = self { return true }
    return false
  }

  /// The member `key` of an object; `undefined` for a missing key or a value that is not an object.
  @inlinable public func member(_ key: String) -> Value {
    if case .object(let object) = self { return object[key] ?? .undefined }
    return .undefined
  }
}

/// The SQL versions a rule can be written in.
public enum SQLVersion: String, Sendable, CaseIterable, Comparable {
  /// The original dialect, AWS's API default.
  case v2015_10_08 = "2015-10-08"
  /// The recommended dialect, this engine's default.
  case v2016_03_23 = "2016-03-23"
  /// AWS's name for its newest dialect: read as 2016-03-23, and named `beta` by `sql_version()`.
  case beta = "beta"

  /// The engine's default version.
  public static let `default` = SQLVersion.v2016_03_23

  /// Orders versions by release date, `beta` last.
  public static func < (lhs: SQLVersion, rhs: SQLVersion) -> Bool { lhs.rank < rhs.rank }

  private var rank: Int {
    switch self {
    case .v2015_10_08: 0
    case .v2016_03_23: 1
    case .beta: 2
    }
  }

  /// Parses a version string: `2015-10-08`, `2016-03-23` or `beta`.
  public init?(string: String) { self.init(rawValue: string) }
}

extension Value {
  /// Same type and same value: `1` and `1.0` are different constants (`==` compares numbers; a
  /// decimal keeps no trailing zeros, so `1.5` and `1.50` are one constant); strings by their bytes.
  static func identical(_ a: Value, _ b: Value) -> Bool {
    switch (a, b) {
    case (.int(let x), .int(let y)): x == y
    case (.decimal(let x), .decimal(let y)): x == y
    case (.string(let x), .string(let y)): OrderedObject.sameName(x, y)
    case (.bool(let x), .bool(let y)): x == y
    case (.null, .null), (.undefined, .undefined): true
    default: false
    }
  }
}
