// API CONTRACT: the bodies are being written; the public surface is fixed.

/// A substitution template: text with `${expression}` parts, compiled once like the SQL and rendered
/// against the original message and the rule's SET variables (not against the SELECT output).
public struct Template: Sendable {
  /// The template text.
  public let source: String
  /// True when the text has no `${...}`: it renders to itself.
  public var isConstant: Bool { true }

  /// Compiles `text`; `variables` are the rule's SET variable names. Errors carry positions within
  /// the template text.
  public static func compile(_ text: String, version: SQLVersion = .default, variables: [String] = [])
    throws(SQLError) -> Template
  {
    Template(source: text)
  }

  /// Renders: each `${...}` is replaced by the String form of its value (objects and arrays as
  /// compact JSON, Undefined and Null as nothing).
  public func render(context: EvaluationContext, variables: [Value] = []) -> String {
    source
  }
}
