/// Compiles IoT-SQL text: parse, check, fold constants, generate bytecode.
public enum Compiler {
  /// Compiles one statement; throws every diagnostic (with positions) when it does not compile.
  public static func compile(_ sql: String, version: SQLVersion = .default) throws(SQLError) -> Program {
    let statement = try Parser.parse(sql)
    var checker = Checker(version: version)
    checker.check(statement)
    if checker.hasErrors { throw SQLError(checker.diagnostics, source: sql) }
    var generator = CodeGenerator(version: version, variables: statement.variables.map(\.name))
    generator.compile(statement)
    if generator.diagnostics.contains(where: { $0.severity == .error }) {
      throw SQLError(checker.diagnostics + generator.diagnostics, source: sql)
    }
    let program = generator.finish(
      // A Basic Ingest filter subscribes to nothing: the rule is one without FROM (the checker warns).
      source: sql,
      topicFilter: statement.from.flatMap { BasicIngest.isIngestFilter($0.filter) ? nil : $0.filter },
      warnings: statement.warnings + checker.diagnostics + generator.diagnostics)
    // `SELECT topic(3) ... FROM 'a/b'`: every message the rule takes has two levels.
    guard let filter = program.topicFilter else { return program }
    let unreachable = program.topicLevelsRead.compactMap { read in
      Program.unreachableTopicLevel(read.level, filter: filter).map {
        Diagnostic(.warning, stage: .compile, $0, at: read.range)
      }
    }
    return unreachable.isEmpty ? program : program.adding(warnings: unreachable)
  }

  /// Compiles one expression into a program that outputs its value: how templates are compiled.
  /// `variables` are the SET variable names the expression may read, in the rule's order.
  static func compileExpression(
    _ expression: Expression, source: String, version: SQLVersion, variables: [String]
  ) throws(SQLError) -> Program {
    var checker = Checker(version: version, variables: variables)
    checker.check(expression)
    if checker.hasErrors { throw SQLError(checker.diagnostics, source: source) }
    var generator = CodeGenerator(version: version, variables: variables)
    generator.compile(expression)
    generator.emit(.output, at: expression.range)
    if generator.diagnostics.contains(where: { $0.severity == .error }) {
      throw SQLError(generator.diagnostics, source: source)
    }
    return generator.finish(
      source: source, topicFilter: nil, warnings: checker.diagnostics + generator.diagnostics)
  }
}

/// Turns a checked AST into instructions. Constant sub-expressions are folded here.
struct CodeGenerator {
  let version: SQLVersion
  private let variableIndex: [String: Int]
  private let variableNames: [String]
  private var instructions: [Instruction] = []
  private var sourceMap: [PackedRange] = []
  private var constants: [Value] = []
  /// The payload paths read, in order of first use, and their indexes (a table of 5,000 paths
  /// grew quadratically when each was looked up and added in the `PathTable`).
  private var paths: [[String]] = []
  private var pathIndexes: [[String]: Int] = [:]
  /// Where each constant of the pool is.
  private var constantIndexes: [ConstantKey: Int] = [:]
  private var readsWholePayload = false
  private var prepared: [(any Sendable)?] = []
  private var keyLists: [[String]] = []
  /// How many nested queries enclose the expression being compiled: bare names then read the element.
  private var nestingDepth = 0
  /// Per enclosing nested query, the name its `FROM ... AS name` gives its element: inside it, and
  /// inside the queries nested in it, that name reads the element itself.
  private var elementNames: [String?] = []
  private(set) var diagnostics: [Diagnostic] = []

  init(version: SQLVersion, variables: [String]) {
    self.version = version
    self.variableNames = variables
    var index: [String: Int] = [:]
    for (position, name) in variables.enumerated() { index[name] = position }
    self.variableIndex = index
  }

  /// The program, its arrays without growth slack (a rule keeps its program as long as it runs).
  func finish(source: String, topicFilter: String?, warnings: [Diagnostic]) -> Program {
    let paths = PathTable(paths: paths.map { $0.compacted() }.compacted())
    let code = Program.Code(
      variableNames: variableNames, instructions: instructions.compacted(), constants: constants.compacted(),
      paths: paths, readsWholePayload: readsWholePayload, packedSourceMap: sourceMap.compacted(),
      prepared: prepared.compacted(),
      passesThrough: instructions.contains { $0.opcode == .passthrough || $0.opcode == .passthroughPlus },
      keyLists: keyLists.compacted())
    return Program(
      source: source, version: version, topicFilter: topicFilter, warnings: warnings.compacted(), code: code)
  }

  /// The index of a payload path, added when new.
  private mutating func pathIndex(of path: [String]) -> Int {
    if let index = pathIndexes[path] { return index }
    paths.append(path)
    pathIndexes[path] = paths.count - 1
    return paths.count - 1
  }

  // MARK: Emitting

  @discardableResult
  mutating func emit(_ opcode: Opcode, _ a: Int = 0, _ b: Int = 0, _ c: Int = 0, at range: SourceRange) -> Int
  {
    instructions.append(Instruction(opcode, Int32(a), Int32(b), Int32(c)))
    sourceMap.append(PackedRange(range))
    return instructions.count - 1
  }

  /// Points the jump at `address` to the next instruction to be emitted.
  mutating func patch(_ address: Int) {
    instructions[address].a = Int32(instructions.count)
  }

  mutating func constant(_ value: Value) -> Int {
    let key = ConstantKey(value)
    if let key, let index = constantIndexes[key] { return index }
    constants.append(value)
    if let key { constantIndexes[key] = constants.count - 1 }
    return constants.count - 1
  }

  /// What makes constants ``Value/identical(_:_:)``, to find one in the pool by hashing (a linear
  /// search made a CASE of 10,000 WHENs take seconds to compile); nil for the kinds never shared.
  private enum ConstantKey: Hashable {
    case int(Int)
    case decimal(String, exponent: Int)
    /// By its bytes: `'é'` and `'e\u0301'` are two constants (`String`'s `==` would merge them).
    case string(MemberName)
    case bool(Bool)
    case null
    case undefined

    init?(_ value: Value) {
      switch value {
      case .int(let int): self = .int(int)
      case .decimal(let decimal): self = .decimal(decimal.description, exponent: decimal.exponent)
      case .string(let string): self = .string(MemberName(string))
      case .bool(let bool): self = .bool(bool)
      case .null: self = .null
      case .undefined: self = .undefined
      default: return nil
      }
    }
  }

  // MARK: Statements

  mutating func compile(_ statement: Statement) {
    for assignment in statement.variables {
      compile(assignment.value)
      emit(.storeVariable, variableIndex[assignment.name]!, at: assignment.range)
    }
    var toNoMatch: Int?
    if let condition = statement.whereClause {
      compile(condition)
      toNoMatch = emit(.jumpIfNotTrue, at: condition.range)
    }
    if let range = Self.wholePayloadRange(statement.select) {
      emit(.passthrough, at: range)
    } else if case .value(let expression) = statement.select, let path = Self.payloadPath(expression) {
      // `SELECT VALUE a.b`: `outputPath` may copy the path's bytes.
      emit(.outputPath, pathIndex(of: path), at: statement.range)
    } else if case .items(let items) = statement.select,
      compileStarPlus(items, range: statement.range) || compileOutputRecord(items, range: statement.range)
    {
      // `passthroughPlus` and `outputRecord` stop the program themselves.
    } else {
      compile(statement.select, range: statement.range)
      emit(.output, at: statement.range)
    }
    if let toNoMatch {
      patch(toNoMatch)
      emit(.noMatch, at: statement.whereClause!.range)
    }
  }

  /// Where the SELECT list says "the payload itself", `SELECT *` or `SELECT VALUE *`: both pass the
  /// payload on as `SELECT *` does (its bytes when the writer would spell them so). Nil otherwise.
  static func wholePayloadRange(_ select: SelectClause) -> SourceRange? {
    switch select {
    case .items(let items) where items.count == 1 && items[0].kind == .star && items[0].alias == nil:
      return items[0].range
    case .value(let expression) where expression.kind == .wildcard:
      return expression.range
    default:
      return nil
    }
  }

  /// Leaves the SELECT result on the stack.
  mutating func compile(_ select: SelectClause, range: SourceRange) {
    switch select {
    case .value(let expression): compile(expression)
    case .items(let items):
      if compileRecord(items, range: range) { return }
      if nestingDepth > 0, items.count == 1, case .star = items[0].kind, items[0].alias == nil {
        // A nested `SELECT *` alone is the element itself, as the statement's is the payload
        // itself: an object element the same, a number or string element no longer `{}`.
        emit(.loadElement, at: items[0].range)
        return
      }
      emit(.newObject, at: range)
      for (position, item) in items.enumerated() {
        switch item.kind {
        case .star, .members:
          if case .members(let base) = item.kind { compile(base) } else { loadCurrentObject(at: item.range) }
          if let alias = item.alias {
            emit(.setMember, aliasConstant(alias), at: item.range)
          } else {
            emit(.mergeMembers, at: item.range)
          }
        case .expression(let expression):
          compile(expression)
          let alias = item.alias ?? [Self.defaultName(for: expression, position: position)]
          emit(.setMember, aliasConstant(alias), at: item.range)
        }
      }
    }
  }

  /// The items of a SELECT list, but the one at `skipping`, as (output key, expression) when each
  /// is an expression under a one-level key and no key repeats; nil otherwise (`*`, dotted aliases
  /// and repeated keys build the result member by member).
  private static func distinctMembers(_ items: [SelectItem], skipping: Int? = nil) -> [(String, Expression)]?
  {
    var members: [(String, Expression)] = []
    var seen: Set<String> = []
    for (position, item) in items.enumerated() where position != skipping {
      guard case .expression(let expression) = item.kind else { return nil }
      let alias = item.alias ?? [Self.defaultName(for: expression, position: position)]
      guard alias.count == 1, seen.insert(alias[0]).inserted else { return nil }
      members.append((alias[0], expression))
    }
    return members
  }

  /// A SELECT list of expressions under distinct one-level keys (the common shape) builds its
  /// result in one step: the values on the stack, then `makeRecord`. Returns false, emitting
  /// nothing, for any other list.
  private mutating func compileRecord(_ items: [SelectItem], range: SourceRange) -> Bool {
    guard let members = Self.distinctMembers(items) else { return false }
    for (_, expression) in members { compile(expression) }
    // Key constants in a row (the disassembler shows them), appended without deduplication.
    let first = constants.count
    constants.append(contentsOf: members.map { .string($0.0) })
    keyLists.append(members.map(\.0))
    emit(.makeRecord, first, members.count, keyLists.count - 1, at: range)
    return true
  }

  /// `SELECT *, e1 AS k1, ...` (the payload's members, then more under distinct one-level keys, as
  /// `SELECT *, topic() AS topic` adds one), or the same with `*` last (the members after them),
  /// leaves the values on the stack and ends with `passthroughPlus`, which writes them beside the
  /// payload's bytes where it can. The keys are also payload paths: the reader then says whether
  /// the payload has them already (a key it has keeps its place, so the payload must be rebuilt).
  /// Returns false, emitting nothing, for any other list.
  private mutating func compileStarPlus(_ items: [SelectItem], range: SourceRange) -> Bool {
    guard nestingDepth == 0, items.count >= 2 else { return false }
    let starFirst = items[0].kind == .star && items[0].alias == nil
    let star = starFirst ? 0 : items.count - 1
    guard items[star].kind == .star, items[star].alias == nil,
      let members = Self.distinctMembers(items, skipping: star)
    else { return false }
    for (_, expression) in members { compile(expression) }
    // The keys, then each key's path index, as constants in a row (the disassembler shows them).
    let first = constants.count
    constants.append(contentsOf: members.map { .string($0.0) })
    constants.append(contentsOf: members.map { .int(pathIndex(of: [$0.0])) })
    emit(.passthroughPlus, first, members.count, starFirst ? 0 : 1, at: range)
    return true
  }

  /// The statement's SELECT list of expressions under distinct one-level keys
  /// (`SELECT state.reported AS r, topic() AS t`): the values that are not payload paths on the
  /// stack, then `outputRecord`, which reads the paths' values itself, so that an array or object
  /// the reader found spelled as the writer would spell it is copied as its bytes instead of being
  /// built and written, and which writes the record member by member, without building it, when
  /// its values allow. Returns false, emitting nothing, for any other list.
  private mutating func compileOutputRecord(_ items: [SelectItem], range: SourceRange) -> Bool {
    guard nestingDepth == 0, let members = Self.distinctMembers(items) else { return false }
    var slots: [Int] = []
    for (_, expression) in members {
      if let path = Self.payloadPath(expression) {
        slots.append(pathIndex(of: path))
      } else {
        compile(expression)
        slots.append(-1)
      }
    }
    // The keys, then each item's payload path index (-1: its value is on the stack), as constants
    // in a row (the disassembler shows them).
    let first = constants.count
    constants.append(contentsOf: members.map { .string($0.0) })
    constants.append(contentsOf: slots.map { .int($0) })
    keyLists.append(members.map(\.0))
    emit(.outputRecord, first, members.count, keyLists.count - 1, at: range)
    return true
  }

  private mutating func aliasConstant(_ alias: [String]) -> Int {
    constant(.array(alias.map { .string($0) }))
  }

  private mutating func loadCurrentObject(at range: SourceRange) {
    if nestingDepth > 0 {
      emit(.loadElement, at: range)
    } else {
      readsWholePayload = true
      emit(.loadPayload, at: range)
    }
  }

  /// The output key of an item without AS: a field's or path's last name, a function's name,
  /// else `_N` with N the 1-based item position (see Grammar/README.md).
  static func defaultName(for expression: Expression, position: Int) -> String {
    switch expression.kind {
    case .field(let name): name
    case .member(_, let name): name
    case .variable(let name): name
    case .call(let name, _): name
    case .cast: "cast"
    default: "_\(position + 1)"
    }
  }

  // MARK: Expressions

  mutating func compile(_ expression: Expression) {
    if let value = fold(expression) {
      warnOfTruncatedQuotients(in: expression)
      emit(.constant, constant(value), at: expression.range)
      return
    }
    let range = expression.range
    switch expression.kind {
    case .literal(let value):
      emit(.constant, constant(Coercions.normalized(value, version: version)), at: range)
    case .field(let name):
      if nestingDepth > 0, let index = elementNames.lastIndex(of: name) {
        let out = elementNames.count - 1 - index
        // An enclosing query's name for its element, the innermost such query first: A counts the
        // queries out from the innermost.
        emit(.loadElement, out, at: range)
      } else if nestingDepth > 0 {
        emit(.loadElementField, constant(.string(name)), at: range)
      } else {
        emit(.loadPath, pathIndex(of: [name]), at: range)
      }
    case .variable(let name):
      emit(.loadVariable, variableIndex[name] ?? 0, at: range)
    case .wildcard:
      loadCurrentObject(at: range)
    case .member(let base, let name):
      if nestingDepth == 0, let path = Self.payloadPath(expression) {
        emit(.loadPath, pathIndex(of: path), at: range)
      } else {
        compile(base)
        emit(.member, constant(.string(name)), at: range)
      }
    case .unary(let op, var operand):
      if op == .exists, case .nested(var query) = operand.kind {
        // Whether an element passes the WHERE, whatever the SELECT list would make of it (an
        // Undefined item drops its element from a query's result): each passing element yields true.
        query.select = .value(Expression(.literal(.bool(true)), operand.range))
        operand = Expression(.nested(query), operand.range)
      }
      compile(operand)
      switch op {
      case .negate: emit(.negate, at: range)
      case .not: emit(.not, at: range)
      case .exists: emit(.exists, at: range)
      }
    case .binary(let op, let left, let right):
      compile(left)
      compile(right)
      emit(Self.opcode(for: op), at: range)
    case .call(let name, let arguments):
      compileCall(name: name, arguments: arguments, range: range)
    case .cast(let operand, let type, _):
      compile(operand)
      let target = CastType(name: type, version: version) ?? .string
      emit(.cast, CastType.allCases.firstIndex(of: target)!, at: range)
    case .caseWhen(let subject, let branches, let otherwise):
      compileCase(subject: subject, branches: branches, otherwise: otherwise, range: range)
    case .object(let members):
      for member in members { compile(member.value) }
      // Keys take a consecutive block of the pool, not de-duplicated.
      let first = constants.count
      for member in members { constants.append(.string(member.key)) }
      emit(.makeObject, first, members.count, at: range)
    case .array(let elements):
      for element in elements { compile(element) }
      emit(.makeArray, elements.count, at: range)
    case .nested(let query):
      let source = instructions.count
      compile(query.from)
      let begin = emit(.iterateBegin, at: range)
      let loop = instructions.count
      let next = emit(.iterateNext, at: range)
      nestingDepth += 1
      elementNames.append(query.alias)
      if let condition = query.whereClause {
        compile(condition)
        emit(.jumpIfNotTrue, loop, at: condition.range)
      }
      compile(query.select, range: range)
      emit(.iterateAppend, at: range)
      emit(.jump, loop, at: range)
      elementNames.removeLast()
      nestingDepth -= 1
      patch(next)
      emit(.iterateEnd, at: range)
      patch(begin)
      projectElements(source: source, begin: begin)
    }
  }

  /// A nested query over a payload path whose elements it reads only by name (`v` in `SELECT VALUE
  /// v FROM r WHERE v > 50`) takes those members from the path's bytes, its elements left unbuilt
  /// (building the array's objects took half of such a rule's time): the path's `loadPath` gets
  /// B = 1 (leave a container in its bytes), `iterateBegin` B = 1 + the constant listing the names
  /// (at most 8) and C = the path, and each of the query's `loadElementField` B = 1 + its name's
  /// place in the list.
  private mutating func projectElements(source: Int, begin: Int) {
    guard begin == source + 1, instructions[source].opcode == .loadPath else { return }
    var names: [Value] = []
    var reads: [(address: Int, name: Int)] = []
    // The queries inside this one open above it: an element A queries out at `depth` is this one's.
    var depth = 0
    for address in (begin + 1)..<instructions.count {
      let instruction = instructions[address]
      switch instruction.opcode {
      case .iterateBegin: depth += 1
      case .iterateEnd: depth -= 1
      case .loadElementField where depth == 0:
        let name = constants[Int(instruction.a)]
        if !names.contains(name) { names.append(name) }
        reads.append((address, names.firstIndex(of: name)!))
      case .loadElement where Int(instruction.a) == depth: return
      default: break
      }
    }
    guard !names.isEmpty, names.count <= 8 else { return }
    instructions[source].b = 1
    instructions[begin].b = Int32(constant(.array(names)) + 1)
    instructions[begin].c = instructions[source].a
    for read in reads { instructions[read.address].b = Int32(read.name + 1) }
  }

  /// `a.b.c` on a payload field, as a path from the payload's root; nil for other bases.
  static func payloadPath(_ expression: Expression) -> [String]? {
    switch expression.kind {
    case .field(let name): [name]
    case .member(let base, let name): payloadPath(base).map { $0 + [name] }
    default: nil
    }
  }

  static func opcode(for op: BinaryOperator) -> Opcode {
    switch op {
    case .or: .or
    case .and: .and
    case .equal: .equal
    case .notEqual: .notEqual
    case .less: .less
    case .lessOrEqual: .lessOrEqual
    case .greater: .greater
    case .greaterOrEqual: .greaterOrEqual
    case .in: .in
    case .add: .add
    case .subtract: .subtract
    case .multiply: .multiply
    case .divide: .divide
    case .remainder: .remainder
    }
  }

  private mutating func compileCall(name: String, arguments: [Expression], range: SourceRange) {
    guard let index = FunctionRegistry.index(of: name) else { return }
    let spec = FunctionRegistry.all[index]
    // A wrong number of arguments makes the call Undefined, as AWS documents; the checker warns.
    guard spec.arity.contains(arguments.count) else {
      emit(.constant, constant(.undefined), at: range)
      return
    }
    let isEncode = spec.name.lowercased() == "encode"
    for (position, argument) in arguments.enumerated() {
      if isEncode, position == 0, argument.kind == .wildcard, nestingDepth == 0 {
        emit(.loadRawPayload, at: argument.range)
      } else {
        compile(argument)
      }
    }
    var slot = -1
    if let prepare = spec.prepare {
      let constants = arguments.map { fold($0) }
      do {
        let state = try prepare(constants, version)
        if let state {
          prepared.append(state)
          slot = prepared.count - 1
        }
      } catch {
        let where_ = arguments.indices.contains(error.argument) ? arguments[error.argument].range : range
        // AWS documents an invalid regular expression or replacement, and an unknown transform mode, as
        // an Undefined result: warn, and the call is Undefined. Other refused constants (an unknown
        // encoding scheme, a bad time pattern) have no documented result and stay errors, as does a
        // mode that is no constant at all. A call whose argument count is wrong for its mode is
        // Undefined, as any call with the wrong number of arguments.
        let refusedConstant = constants.indices.contains(error.argument) && constants[error.argument] != nil
        if ((spec.family == "regex" || spec.name == "transform") && refusedConstant)
          || error.isAlwaysUndefined
        {
          diagnostics.append(
            Diagnostic(
              .warning, stage: .compile, error.message + "; the call is always Undefined", at: where_))
          for _ in arguments { emit(.pop, at: range) }
          emit(.constant, constant(.undefined), at: range)
          return
        }
        diagnostics.append(Diagnostic(stage: .compile, error.message, at: where_))
      }
    }
    emit(.call, index, arguments.count, slot, at: range)
  }

  private mutating func compileCase(
    subject: Expression?, branches: [CaseBranch], otherwise: Expression?, range: SourceRange
  ) {
    var toEnd: [Int] = []
    if let subject {
      compile(subject)
      // An Undefined subject makes the whole CASE Undefined, ELSE or not: it stays as the result.
      toEnd.append(emit(.jumpIfUndefined, at: subject.range))
      for branch in branches {
        compile(branch.when)
        let miss = emit(.caseCompare, at: branch.when.range)
        compile(branch.then)
        toEnd.append(emit(.jump, at: branch.then.range))
        patch(miss)
      }
      emit(.pop, at: range)
    } else {
      for branch in branches {
        compile(branch.when)
        let miss = emit(.jumpIfNotTrue, at: branch.when.range)
        compile(branch.then)
        toEnd.append(emit(.jump, at: branch.then.range))
        patch(miss)
      }
    }
    if let otherwise {
      compile(otherwise)
    } else {
      emit(.constant, constant(.undefined), at: range)
    }
    for address in toEnd { patch(address) }
  }

  // MARK: Constant folding

  /// Warns of each constant `Int / Int` in `expression` that drops a fraction (`9 / 5` is 1): AWS's
  /// operator table makes the quotient an Int, which a rule ported from an example rarely means.
  private mutating func warnOfTruncatedQuotients(in expression: Expression) {
    switch expression.kind {
    case .binary(let op, let left, let right):
      warnOfTruncatedQuotients(in: left)
      warnOfTruncatedQuotients(in: right)
      guard op == .divide, case .int(let x)? = fold(left), case .int(let y)? = fold(right), y != 0,
        case (let remainder, false) = x.remainderReportingOverflow(dividingBy: y), remainder != 0
      else { return }
      let quotient = Operators.binary(.divide, .int(x), .int(y), version: version)
      let exact = DecimalMath.divide(SQLDecimal(x), SQLDecimal(y)).map { JSONWriter.string(.decimal($0)) }
      // A whole decimal written as such (`9.0 / 5`) is an Int here too, which its writer did not mean.
      func writtenAsDecimal(_ operand: Expression) -> Bool {
        switch operand.kind {
        case .literal(.decimal): return true
        case .unary(_, let inner): return writtenAsDecimal(inner)
        default: return false
        }
      }
      let writesDecimal = writtenAsDecimal(left) || writtenAsDecimal(right)
      let why =
        writesDecimal ? " (under 2016-03-23 a whole number is an Int even when written with a fraction)" : ""
      diagnostics.append(
        Diagnostic(
          .warning, stage: .compile,
          "\(x) / \(y) is \(JSONWriter.string(quotient)): an Int divided by an Int is an Int, truncated toward zero, "
            + "as AWS's operator table says\(why)" + (exact.map { "; write \($0) for the fraction" } ?? ""),
          at: expression.range))
    case .unary(_, let operand), .cast(let operand, _, _), .member(let operand, _):
      warnOfTruncatedQuotients(in: operand)
    case .call(_, let arguments), .array(let arguments):
      for argument in arguments { warnOfTruncatedQuotients(in: argument) }
    case .object(let members):
      for member in members { warnOfTruncatedQuotients(in: member.value) }
    case .caseWhen(let subject, let branches, let otherwise):
      for part in [subject, otherwise].compactMap({ $0 }) + branches.flatMap({ [$0.when, $0.then] }) {
        warnOfTruncatedQuotients(in: part)
      }
    case .literal, .field, .variable, .wildcard, .nested:
      return
    }
  }

  /// The value of `expression` when it is the same for every message, else nil.
  func fold(_ expression: Expression) -> Value? {
    switch expression.kind {
    case .literal(let value):
      return Coercions.normalized(value, version: version)
    case .unary(let op, let operand):
      guard let value = fold(operand) else { return nil }
      return Operators.unary(op, value, version: version)
    case .binary(let op, let left, let right):
      guard let l = fold(left), let r = fold(right) else { return nil }
      return Operators.binary(op, l, r, version: version)
    case .cast(let operand, let type, _):
      guard let value = fold(operand), let target = CastType(name: type, version: version) else { return nil }
      return Coercions.cast(value, to: target, version: version)
    case .array(let elements):
      var values: [Value] = []
      for element in elements {
        guard let value = fold(element) else { return nil }
        if !value.isUndefined { values.append(value) }
      }
      return .array(values)
    case .object(let members):
      var folded: [(String, Value)] = []
      folded.reserveCapacity(members.count)
      for member in members {
        guard let value = fold(member.value) else { return nil }
        if !value.isUndefined { folded.append((member.key, value)) }
      }
      return .object(OrderedObject(folded))
    case .call(let name, let arguments):
      guard let spec = FunctionRegistry.lookup(name), spec.isDeterministic, spec.unavailableReason == nil
      else { return nil }
      if !spec.arity.contains(arguments.count) { return .undefined }
      var values: [Value] = []
      for argument in arguments {
        guard let value = fold(argument) else { return nil }
        values.append(value)
      }
      let state: (any Sendable)?
      if let prepare = spec.prepare {
        guard let prepared = try? prepare(values.map { Optional($0) }, version) else { return nil }
        state = prepared
      } else {
        state = nil
      }
      let call = FunctionCall(
        arguments: values[...], context: EvaluationContext(topic: "", payload: []), version: version,
        prepared: state)
      return spec.implementation(call)
    default:
      return nil
    }
  }
}

extension Compiler {
  /// True when `sql` is `SELECT VALUE` of an expression that is never an object: a literal that
  /// is none, an operator's or a cast's result, an array, a nested query, a function AWS documents
  /// as giving no object (`concat(...) -> String|Array`), or a CASE of only such branches.
  public static func selectsValueThatIsNoObject(_ sql: String) -> Bool {
    guard let statement = try? Parser.parse(sql), case .value(let expression) = statement.select else {
      return false
    }
    return isNeverAnObject(expression)
  }

  private static func isNeverAnObject(_ expression: Expression) -> Bool {
    switch expression.kind {
    case .literal(let value): if case .object = value { return false } else { return true }
    case .unary, .binary, .cast, .array, .nested: return true
    case .call(let name, _):
      guard let signature = FunctionRegistry.lookup(name)?.signature,
        let arrow = signature.range(of: "->")
      else { return false }
      let returns = signature[arrow.upperBound...]
      return !returns.contains("Any") && !returns.contains("Object")
    case .caseWhen(_, let branches, let otherwise):
      return branches.allSatisfy { isNeverAnObject($0.then) } && otherwise.map(isNeverAnObject) ?? true
    default: return false
    }
  }

  /// The top-level keys every result of `sql` has or lacks, in order, when its SELECT says them
  /// (a list of expressions, each with its AS or its default name); nil for `SELECT *`, `SELECT
  /// VALUE`, or a statement that does not parse.
  public static func outputKeys(of sql: String) -> [String]? {
    guard let statement = try? Parser.parse(sql), case .items(let items) = statement.select else {
      return nil
    }
    var keys: [String] = []
    for (position, item) in items.enumerated() {
      guard case .expression(let expression) = item.kind else { return nil }
      let key = item.alias?.first ?? CodeGenerator.defaultName(for: expression, position: position)
      if !keys.contains(key) { keys.append(key) }
    }
    return keys
  }
}
