import Foundation

/// Prints a program one instruction a line, in the manner of SQLite's EXPLAIN: address, opcode,
/// operands, and a comment made of the opcode's synopsis with its operands resolved and the source
/// text the instruction came from.
public enum Disassembler {
  /// The listing of `program`.
  public static func listing(_ program: Program) -> String {
    var lines = ["addr  opcode            a     b     c     comment"]
    lines.append("----  ----------------  ----  ----  ----  -------")
    let source = Array(program.source.utf8)
    for (address, instruction) in program.instructions.enumerated() {
      let range = program.sourceRange(at: address)
      var comment = describe(instruction, in: program)
      let start = min(range.start.offset, source.count)
      let end = min(max(range.end.offset, start), source.count)
      var text = String(decoding: source[start..<end], as: UTF8.self)
        .split(whereSeparator: \.isNewline).joined(separator: " ")
      if text.count > 40 { text = String(text.prefix(37)) + "..." }
      if !text.isEmpty { comment += "  -- \(range.start): \(text)" }
      lines.append(
        pad(String(address), 4) + "  " + pad(instruction.opcode.name, 16) + "  "
          + pad(String(instruction.a), 4)
          + "  " + pad(String(instruction.b), 4) + "  " + pad(String(instruction.c), 4) + "  " + comment)
    }
    if !program.paths.paths.isEmpty {
      lines.append("")
      lines.append("payload paths:")
      for (index, path) in program.paths.paths.enumerated() {
        lines.append("  [\(index)] \(path.joined(separator: "."))")
      }
    }
    if !program.constants.isEmpty {
      lines.append("")
      lines.append("constants:")
      for (index, value) in program.constants.enumerated() {
        lines.append("  [\(index)] \(render(value))")
      }
    }
    return lines.joined(separator: "\n")
  }

  private static func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
  }

  private static func render(_ value: Value) -> String {
    switch value {
    case .undefined: "Undefined"
    default: JSONWriter.string(value)
    }
  }

  /// The synopsis with operands replaced by what they name.
  static func describe(_ instruction: Instruction, in program: Program) -> String {
    let a = Int(instruction.a)
    func constant(_ index: Int) -> String {
      program.constants.indices.contains(index) ? render(program.constants[index]) : "?"
    }
    switch instruction.opcode {
    case .constant: return "push \(constant(a))"
    case .loadPath, .outputPath:
      let path = program.paths.paths.indices.contains(a) ? program.paths.paths[a].joined(separator: ".") : "?"
      if instruction.opcode == .outputPath { return "halt: output payload.\(path)" }
      return instruction.b == 1
        ? "push payload.\(path) (an array or object left in its bytes for the nested query)"
        : "push payload.\(path)"
    case .loadVariable, .storeVariable:
      let name = program.variableNames.indices.contains(a) ? program.variableNames[a] : "?"
      return instruction.opcode == .loadVariable ? "push @\(name)" : "@\(name) = pop"
    case .loadElement:
      switch a {
      case 0: return "push the element of the innermost nested query"
      case 1: return "push the element of the nested query 1 level out"
      default: return "push the element of the nested query \(a) levels out"
      }
    case .loadElementField: return "push element.\(keyText(program, a))"
    case .member: return "top = top.\(keyText(program, a))"
    case .call:
      let name = FunctionRegistry.all.indices.contains(a) ? FunctionRegistry.all[a].name : "?"
      return "push \(name)(\(instruction.b) args)" + (instruction.c >= 0 ? " prepared[\(instruction.c)]" : "")
    case .cast:
      let type = CastType.allCases.indices.contains(a) ? CastType.allCases[a].rawValue : "?"
      return "top = cast(top AS \(type))"
    case .setMember: return "top.\(aliasText(program, a)) = pop (skip Undefined)"
    case .makeObject, .makeRecord:
      let keys = (a..<(a + Int(instruction.b))).map { keyText(program, $0) }.joined(separator: ", ")
      return "push {\(keys)} from \(instruction.b) values"
    case .makeArray: return "push [\(a) values]"
    case .outputRecord:
      let count = Int(instruction.b)
      let members = (a..<(a + count)).map { index -> String in
        let key = keyText(program, index)
        guard program.constants.indices.contains(index + count),
          case .int(let slot) = program.constants[index + count],
          program.paths.paths.indices.contains(slot)
        else { return key }
        return "\(key): payload.\(program.paths.paths[slot].joined(separator: "."))"
      }
      return "halt: output {\(members.joined(separator: ", "))}"
    case .passthroughPlus:
      let keys = (a..<(a + Int(instruction.b))).map { keyText(program, $0) }.joined(separator: ", ")
      return instruction.c == 0
        ? "halt: output * + {\(keys)} from \(instruction.b) values"
        : "halt: output {\(keys)} from \(instruction.b) values + *"
    case .iterateBegin where instruction.b > 0:
      let names = constant(Int(instruction.b) - 1)
      return
        "begin nested query over pop, reading only its elements' \(names), from the bytes when left so; else goto \(a)"
    case .jump, .jumpIfNotTrue, .jumpIfUndefined, .caseCompare, .iterateBegin, .iterateNext:
      return instruction.opcode.synopsis.replacingOccurrences(of: "goto A", with: "goto \(a)")
    default: return instruction.opcode.synopsis
    }
  }

  private static func keyText(_ program: Program, _ index: Int) -> String {
    if program.constants.indices.contains(index), case .string(let key) = program.constants[index] {
      return key
    }
    return "?"
  }

  private static func aliasText(_ program: Program, _ index: Int) -> String {
    if program.constants.indices.contains(index), case .array(let keys) = program.constants[index] {
      return keys.map { if case .string(let key) = $0 { key } else { "?" } }.joined(separator: ".")
    }
    return "?"
  }
}
