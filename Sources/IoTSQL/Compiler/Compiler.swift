// API CONTRACT: the bodies are being written; the public surface is fixed.

/// Compiles IoT-SQL text: parse, check, generate bytecode, fold constants.
public enum Compiler {
  /// Compiles one statement; throws every diagnostic (with positions) when it does not compile.
  public static func compile(_ sql: String, version: SQLVersion = .default) throws(SQLError) -> Program {
    throw SQLError([Diagnostic(stage: .compile, "compiler not implemented", at: SourceRange(at: .start))], source: sql)
  }
}
