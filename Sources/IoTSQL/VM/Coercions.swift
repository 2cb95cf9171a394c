// CONTRACT STUB: the semantics helper replaces the bodies; the signatures are fixed.
import Foundation

/// The implicit conversions of the AWS tables (used by operators and function arguments) and the
/// explicit `cast()` table. They differ: see Grammar/README.md.
public enum Coercions {
  /// Implicit conversion to a number: Int stays Int, Decimal stays Decimal, a numeric string (the
  /// strict pattern) becomes Decimal (or Int when whole and V2), Null stays Null, the rest Undefined.
  public static func toNumber(_ value: Value, version: SQLVersion) -> Value { .undefined }

  /// Implicit conversion to String; `nil` when there is none (Null, Undefined, Binary).
  public static func toText(_ value: Value) -> String? { nil }

  /// Implicit conversion to Boolean; `nil` when there is none.
  public static func toBool(_ value: Value) -> Bool? { nil }

  /// Under 2016-03-23 a whole-number Decimal becomes an Int; otherwise the value is returned unchanged.
  public static func normalized(_ value: Value, version: SQLVersion) -> Value { value }

  /// `cast(value AS type)`.
  public static func cast(_ value: Value, to type: CastType, version: SQLVersion) -> Value { .undefined }
}

/// The target types of `cast()`.
public enum CastType: String, Sendable, CaseIterable {
  /// `String`, `Nvarchar`, `Text`, `Ntext`, `varchar`.
  case string
  /// `Int`, `Integer`.
  case int
  /// `Decimal` (2016-03-23).
  case decimal
  /// `Double`: a Decimal of double precision.
  case double
  /// `Bool`, `Boolean` (2016-03-23).
  case bool

  /// The type named `name` (any case) in `version`, or nil.
  public init?(name: String, version: SQLVersion) {
    switch name.lowercased() {
    case "string", "nvarchar", "text", "ntext", "varchar": self = .string
    case "int", "integer": self = .int
    case "double": self = .double
    case "decimal" where version >= .v2016_03_23: self = .decimal
    case "bool", "boolean" where version >= .v2016_03_23: self = .bool
    default: return nil
    }
  }
}
