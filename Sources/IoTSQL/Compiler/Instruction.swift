/// One VM instruction: an opcode and up to three integer operands, as SQLite's P1..P3.
public struct Instruction: Sendable, Equatable {
  /// What to do.
  public var opcode: Opcode
  /// First operand.
  public var a: Int32
  /// Second operand.
  public var b: Int32
  /// Third operand.
  public var c: Int32

  /// Creates an instruction.
  public init(_ opcode: Opcode, _ a: Int32 = 0, _ b: Int32 = 0, _ c: Int32 = 0) {
    self.opcode = opcode
    self.a = a
    self.b = b
    self.c = c
  }
}
