/// The result of a rule that matched: what its actions receive.
public struct Evaluation: Sendable {
  /// The outgoing payload bytes: compact JSON, the passed-through bytes of `SELECT *`, or empty for a
  /// bare Undefined. Written out on each read when the VM was told no action needs them (see
  /// ``VirtualMachine/evaluate(_:context:serializesPayload:)``).
  public var payload: [UInt8] {
    get {
      if serializesOnRead, let storedValue { return Evaluation.serialize(storedValue) }
      return bytes
    }
    set {
      bytes = newValue
      serializesOnRead = false
    }
  }
  private var bytes: [UInt8]
  fileprivate var serializesOnRead = false
  /// The SET variables' values, in `Program.variableNames` order: templates read them.
  public var variables: [Value]
  private var storedValue: Value?
  private var version: SQLVersion

  /// Creates an evaluation from its value (the payload is its compact JSON, or its bytes for Binary).
  public init(value: Value, variables: [Value] = [], version: SQLVersion = .default) {
    self.bytes = Evaluation.serialize(value)
    self.storedValue = value
    self.variables = variables
    self.version = version
  }

  /// Creates an evaluation from its parts: the output payload bytes, its value, the SET variables
  /// (error records and test fakes build one this way).
  public init(output payload: [UInt8], value: Value, variables: [Value] = []) {
    self.init(payload: payload, value: value, variables: variables, version: .default)
  }

  init(payload: [UInt8], value: Value?, variables: [Value], version: SQLVersion) {
    self.bytes = payload
    self.storedValue = value
    self.variables = variables
    self.version = version
  }

  /// The outgoing value: `.binary` for passed-through non-JSON bytes, `.undefined` for an empty
  /// payload. Decoded from `payload` on demand when the VM passed bytes through.
  public var value: Value {
    if let storedValue { return storedValue }
    if payload.isEmpty { return .undefined }
    return (try? JSONReader.parse(payload, options: .for(version))) ?? .binary(payload)
  }

  /// True when the value is held, not read back from `payload` when asked for.
  var holdsValue: Bool { storedValue != nil }

  /// True when the payload is not JSON (a passed-through binary payload).
  public var isBinary: Bool {
    // Without a stored value the VM passed canonical JSON bytes through: not binary, and no need to
    // parse them to say so.
    guard let storedValue else { return false }
    if case .binary = storedValue { return true }
    return false
  }

  static func serialize(_ value: Value) -> [UInt8] {
    switch value {
    case .undefined: return []
    case .binary(let bytes): return bytes
    default:
      return JSONWriter.bytes(value)
    }
  }
}

/// Runs programs. A VM is a cheap value that keeps its stack between runs: give each task its own.
public struct VirtualMachine: Sendable {
  private var stackStorage = StackStorage()
  private var frames: [IterationFrame] = []
  /// The meter the runs share while a budget is shared (``shareBudget()``): one second of CPU for
  /// all of them together, not each (the values each keeps are its own).
  private var sharedMeter: EvaluationLimits.Meter?
  /// The payload as the current program reads it. The VM keeps one view and reads every message
  /// into it, reusing its arrays' storage.
  private var view = PayloadView(kind: .otherJSON, values: [], document: nil, isCanonical: false, error: nil)

  /// One nested query in progress.
  private struct IterationFrame {
    /// The elements; for a projected query (`stride` > 0), `stride` members of each element, in
    /// the order its `iterateBegin` lists their names.
    var elements: [Value]
    var next: Int
    var results: [Value]
    var isObjectSource: Bool
    var current: Value
    /// 0, or the members taken of each element (see ``Compiler`` `projectElements`).
    var stride = 0
    /// How many elements there are.
    var count: Int { stride == 0 ? elements.count : elements.count / stride }
  }

  /// How a run ended.
  private enum Outcome {
    case noMatch
    case value(Value)
    case passthrough
    /// The outgoing payload's bytes, written already (`passthroughPlus`, `outputRecord`, `outputPath`).
    case bytes([UInt8])
    /// Stopped by ``EvaluationLimits``: why, and the address of the instruction it stopped at.
    case limited(String, at: Int)
  }

  /// After `evaluate` returned nil: why the evaluation was stopped by ``EvaluationLimits`` (too
  /// much produced, or too long), or nil when WHERE was simply not true.
  public private(set) var evaluationLimitError: String?
  /// With `evaluationLimitError`: where in the statement it was stopped (the operation that made
  /// the value or took the time; the statement for a result too large).
  public private(set) var evaluationLimitRange: SourceRange?

  /// `evaluationLimitError` with its place, as a diagnostic of the runtime stage.
  public var evaluationLimitDiagnostic: Diagnostic? {
    guard let reason = evaluationLimitError else { return nil }
    return Diagnostic(
      stage: .runtime, reason,
      at: evaluationLimitRange ?? SourceRange(at: SourceLocation(offset: 0, line: 1, column: 1)))
  }

  /// `evaluationLimitError` and its place in `source` (the statement evaluated) on one line:
  /// `a value of 18 MiB was made ... (at 1:21 of the SQL: s + s)`; `place` says the place
  /// otherwise (a rule's, in its file: `rules/big.yaml:6:10`).
  public func evaluationLimitText(
    in source: String, place: (SourceLocation) -> String = { "\($0) of the SQL" }
  ) -> String? {
    guard let reason = evaluationLimitError else { return nil }
    guard let range = evaluationLimitRange else { return reason }
    return "\(reason) (at \(place(range.start)): \(Self.excerpt(of: range, in: source)))"
  }

  /// The text of `range` in `source` on one line, cut after 40 characters: `s + s`.
  static func excerpt(of range: SourceRange, in source: String) -> String {
    let bytes = source.utf8
    let start = min(max(range.start.offset, 0), bytes.count)
    let end = min(max(range.end.offset, start), bytes.count)
    let text = String(decoding: bytes.dropFirst(start).prefix(end - start), as: UTF8.self)
    let shown = text.count > 40 ? text.prefix(40) + "..." : Substring(text)
    return shown.map { $0.isNewline ? " " : String($0) }.joined()
  }

  /// Creates a VM.
  public init() {
  }

  /// Evaluates `program` on one message: nil when WHERE is not true (no match), else the output.
  /// It does not check the topic against FROM: the rule set's trie has done that. Without
  /// `serializesPayload` (a rule whose actions all take the value, such as SQLite's), a built result
  /// is not written out now: `payload` writes it on each read instead. Otherwise a result that
  /// needs no building (a record of scalars and payload paths, `SELECT *` with more items) is
  /// written out directly, and its value is read from those bytes when asked for, unless
  /// `keepsValue` (a rule with an action that takes the value beside one that sends the bytes):
  /// then it is built and written from its value, so that no action parses it again.
  public mutating func evaluate(
    _ program: Program, context: EvaluationContext, serializesPayload: Bool = true, keepsValue: Bool = false
  ) -> Evaluation? {
    let options = JSONReadOptions.for(program.version)
    readPayload(program, context, checksCanonical: program.passesThrough)
    var variables = [Value](repeating: .undefined, count: program.variableNames.count)
    evaluationLimitError = nil
    evaluationLimitRange = nil
    writesResult = serializesPayload && !keepsValue
    let outcome = run(program, context: context, variables: &variables)
    switch outcome {
    case .noMatch:
      return nil
    case .limited(let reason, let address):
      evaluationLimitError = reason
      evaluationLimitRange = program.sourceRange(at: address)
      return nil
    case .value(let value):
      if let reason = EvaluationLimits.resultProblem(value) {
        evaluationLimitError = reason
        evaluationLimitRange = program.instructions.firstIndex {
          $0.opcode == .output || $0.opcode == .outputRecord || $0.opcode == .outputPath
            || $0.opcode == .passthroughPlus
        }.map {
          program.sourceRange(at: $0)
        }
        return nil
      }
      guard serializesPayload else {
        var evaluation = Evaluation(payload: [], value: value, variables: variables, version: program.version)
        evaluation.serializesOnRead = true
        return evaluation
      }
      return Evaluation(
        payload: Evaluation.serialize(value), value: value, variables: variables, version: program.version)
    case .bytes(let bytes):
      return Evaluation(payload: bytes, value: nil, variables: variables, version: program.version)
    case .passthrough:
      switch view.kind {
      case .binary:
        return Evaluation(
          payload: context.payload, value: .binary(context.payload), variables: variables,
          version: program.version)
      case .object, .otherJSON:
        if view.isCanonical {
          return Evaluation(
            payload: context.payload, value: view.document, variables: variables, version: program.version)
        }
        if view.respellsNumbers {
          return Evaluation(
            payload: JSONReader.respellingNumbers(context.payload, options: options), value: view.document,
            variables: variables,
            version: program.version)
        }
        let document =
          view.document ?? (try? JSONReader.parse(context.payload, options: options))
          ?? .binary(context.payload)
        return Evaluation(
          payload: Evaluation.serialize(document), value: document, variables: variables,
          version: program.version)
      }
    }
  }

  /// After `evaluate`: why the payload is not JSON, when the program read fields of it by name
  /// (they were all Undefined, as AWS reads them); nil otherwise, and for a program that reads no
  /// field by name (`SELECT *` and `encode(*, 'base64')` are how binary payloads are meant to be
  /// handled; `get(*, 'key')` is not seen either). AWS counts such messages as the rule's
  /// `ParseError`.
  public var fieldsOfNonJSONError: JSONError? {
    view.kind == .binary && readFields ? view.error : nil
  }
  /// True when the program last read loads a payload path.
  private var readFields = false
  /// True while `evaluate` runs for a result that is written out (`serializesPayload`) and whose
  /// value no action reads (not `keepsValue`), so that `outputRecord`, `outputPath` and
  /// `passthroughPlus` may write it directly.
  private var writesResult = false

  /// The payload as `program` needs it. A program that reads no path, not the whole payload and
  /// does not pass it through (`timestamp()`, `topic(2)`, a constant) never looks at the payload: the
  /// reader, which validates every byte, is skipped. One that passes it through reads it only when
  /// the context does not know its form already (``EvaluationContext/payloadForm``).
  private mutating func readPayload(_ program: Program, _ context: EvaluationContext, checksCanonical: Bool) {
    let code = program.code
    readFields = code.readsFields
    if code.paths.paths.isEmpty, !code.readsWholePayload {
      if !code.passesThrough {
        view.clear()
        return
      }
      // The source read the bytes already and knows their form: nothing left to find out.
      let form = context.payloadForm
      if checksCanonical, form != .unknown, JSONReadOptions.for(program.version).wholeDecimalsAsInt {
        view.clear()
        view.isCanonical = form == .canonical
        view.respellsNumbers = form == .respellsNumbers
        return
      }
    }
    // A payload its source validated (any known form) is read only as far as the last path.
    let options = JSONReadOptions.for(program.version)
    JSONReader.read(
      context.payload, names: code.paths.names, wholeDocument: code.readsWholePayload,
      options: options, checksCanonical: checksCanonical, defersContainers: true,
      findsDeferredForms: code.copiesContainers && options.wholeDecimalsAsInt,
      knownValid: context.payloadForm != .unknown, into: &view)
  }

  /// Makes the runs from now on share one evaluation budget (a template's parts, a row's columns:
  /// each part had a second of CPU of its own, and 40 slow parts held the action 40 s). Returns
  /// false, changing nothing, when one is shared already (the caller's, which ends it).
  public mutating func shareBudget() -> Bool {
    guard sharedMeter == nil else { return false }
    sharedMeter = EvaluationLimits.Meter()
    return true
  }

  /// Ends the budget ``shareBudget()`` began: each run has its own again.
  public mutating func endSharedBudget() { sharedMeter = nil }

  /// Evaluates an expression program (a template part) with given SET variables: its value. Throws
  /// when a limit stopped it, or its value is more than ``EvaluationLimits/resultBytes`` written.
  public mutating func evaluateExpression(
    _ program: Program, context: EvaluationContext, variables: [Value]
  ) throws(EvaluationStopped) -> Value {
    readPayload(program, context, checksCanonical: false)
    var variables = variables
    if variables.count < program.variableNames.count {
      variables += [Value](repeating: .undefined, count: program.variableNames.count - variables.count)
    }
    switch run(program, context: context, variables: &variables) {
    case .value(let value):
      if let reason = EvaluationLimits.templateValueProblem(value) {
        // The expression's range: its last instruction's (the one that made the value).
        throw EvaluationStopped(reason: reason, at: program.sourceRange(at: program.instructions.count - 1))
      }
      return value
    case .bytes(let bytes):
      return (try? JSONReader.parse(bytes, options: .for(program.version))) ?? .undefined
    case .limited(let reason, let address):
      throw EvaluationStopped(reason: reason, at: program.sourceRange(at: address))
    case .noMatch, .passthrough: return .undefined
    }
  }

  private mutating func run(
    _ program: Program, context: EvaluationContext, variables: inout [Value]
  ) -> Outcome {
    // A copied VM shares its storage until one of the copies runs: that one takes new storage.
    if !isKnownUniquelyReferenced(&stackStorage) { stackStorage = StackStorage() }
    var stack = OperandStack(stackStorage)
    defer { stack.finish(into: stackStorage) }
    if !frames.isEmpty { frames.removeAll(keepingCapacity: true) }
    let version = program.version
    let code = program.instructions
    let constants = program.constants
    let functions = FunctionRegistry.implementations
    let timedAlone = FunctionRegistry.timedAlone
    var pc = 0
    var meter = sharedMeter?.clockOnly ?? EvaluationLimits.Meter()
    defer { if sharedMeter != nil { sharedMeter = meter } }
    while pc < code.count {
      let instruction = code[pc]
      pc += 1
      switch instruction.opcode {
      case .constant:
        stack.append(constants[Int(instruction.a)])
      case .loadPath:
        let index = Int(instruction.a)
        if !view.deferredRanges.isEmpty, view.deferredRanges[2 * index] >= 0 {
          // A nested query takes the members it reads from the bytes (`iterateBegin`).
          if instruction.b == 1 {
            stack.append(.undefined)
            break
          }
          buildDeferred(index, context: context, version: version)
        }
        stack.append(index < view.values.count ? view.values[index] : .undefined)
      case .loadPayload:
        stack.append(view.document ?? payloadDocument(context, version: version))
      case .loadRawPayload:
        stack.append(.binary(context.payload))
      case .loadVariable:
        stack.append(variables[Int(instruction.a)])
      case .storeVariable:
        let value = stack.removeLast()
        if let reason = meter.keep(value) { return .limited(reason, at: pc - 1) }
        Self.store(value, at: Int(instruction.a), in: &variables)
      case .loadElement:
        // Indexing reads the one field; `frames.last` would copy the whole frame (its arrays).
        let out = Int(instruction.a)
        stack.append(out < frames.count ? frames[frames.count - 1 - out].current : .undefined)
      case .loadElementField:
        // A projected query's read names its member's place (B - 1) among those taken.
        if instruction.b > 0, let last = frames.indices.last, frames[last].stride > 0 {
          let place = (frames[last].next - 1) * frames[last].stride + Int(instruction.b) - 1
          stack.append(frames[last].elements[place])
        } else {
          let key = Self.key(constants[Int(instruction.a)])
          stack.append(frames.isEmpty ? .undefined : frames[frames.count - 1].current.member(key))
        }
      case .member:
        let key = Self.key(constants[Int(instruction.a)])
        stack[stack.count - 1] = stack[stack.count - 1].member(key)
      case .negate:
        stack[stack.count - 1] = Operators.unary(.negate, stack[stack.count - 1], version: version)
      case .not:
        stack[stack.count - 1] = Operators.unary(.not, stack[stack.count - 1], version: version)
      case .exists:
        stack[stack.count - 1] = Operators.unary(.exists, stack[stack.count - 1], version: version)
      case .or, .and, .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual, .in, .add,
        .subtract, .multiply, .divide, .remainder:
        let right = stack.removeLast()
        let left = stack.removeLast()
        let result = Operators.binary(Self.binaryOperator(instruction.opcode), left, right, version: version)
        // `+` of strings concatenates: what it makes counts.
        if instruction.opcode == .add, let reason = meter.made(result) { return .limited(reason, at: pc - 1) }
        stack.append(result)
      case .call:
        let implementation = functions[Int(instruction.a)]
        let count = Int(instruction.b)
        let slot = Int(instruction.c)
        let result: Value
        let arguments = stack.top(count)
        let heavy = timedAlone[Int(instruction.a)] || EvaluationLimits.Meter.isHeavy(arguments)
        if heavy { meter.startClock() }
        do {
          let call = FunctionCall(
            stack: arguments, context: context, version: version,
            prepared: slot >= 0 ? program.prepared[slot] : nil)
          result = implementation(call)
        }
        if let reason = meter.made(result) { return .limited(reason, at: pc - 1) }
        if heavy, let reason = meter.checkNow() { return .limited(reason, at: pc - 1) }
        stack.drop(count)
        stack.append(result)
      case .cast:
        let target = CastType.allCases[Int(instruction.a)]
        stack[stack.count - 1] = Coercions.cast(stack[stack.count - 1], to: target, version: version)
        if let reason = meter.made(stack[stack.count - 1]) { return .limited(reason, at: pc - 1) }
      case .jump:
        pc = Int(instruction.a)
      case .jumpIfNotTrue:
        if !Operators.isTrue(stack.removeLast()) { pc = Int(instruction.a) }
      case .jumpIfUndefined:
        if stack[stack.count - 1].isUndefined { pc = Int(instruction.a) }
      case .caseCompare:
        let candidate = stack.removeLast()
        if Operators.isTrue(Operators.equals(stack[stack.count - 1], candidate)) {
          stack.removeLast()
        } else {
          pc = Int(instruction.a)
        }
      case .pop:
        stack.removeLast()
      case .makeArray:
        // An Undefined element is left out, as an Undefined member of an object literal is: the
        // array a rule compares or indexes is the one it writes.
        let count = Int(instruction.a)
        var elements = Array(stack.top(count))
        elements.removeAll(where: \.isUndefined)
        for element in elements {
          if let reason = meter.keep(element) { return .limited(reason, at: pc - 1) }
        }
        stack.drop(count)
        stack.append(.array(elements))
      case .makeObject:
        let first = Int(instruction.a)
        let count = Int(instruction.b)
        var object = OrderedObject()
        let base = stack.count - count
        if count <= 16 {
          for offset in 0..<count where !stack[base + offset].isUndefined {
            object[Self.key(constants[first + offset])] = stack[base + offset]
          }
        } else {
          // A literal of thousands of keys: found by hashing (a key may repeat: the last value wins).
          var members: [(String, Value)] = []
          members.reserveCapacity(count)
          for offset in 0..<count where !stack[base + offset].isUndefined {
            members.append((Self.key(constants[first + offset]), stack[base + offset]))
          }
          object = OrderedObject(members)
        }
        stack.drop(count)
        stack.append(.object(object))
      case .makeRecord:
        let count = Int(instruction.b)
        let base = stack.count - count
        var defined = 0
        for offset in base..<stack.count where !stack[offset].isUndefined { defined += 1 }
        let object: OrderedObject
        if defined == count {
          // The usual case: the program's key list as is, one array for the values.
          object = OrderedObject(
            distinctKeys: program.keyLists[Int(instruction.c)], values: Array(stack.top(count)))
        } else {
          var keys: [String] = []
          var values: [Value] = []
          keys.reserveCapacity(defined)
          values.reserveCapacity(defined)
          for offset in 0..<count where !stack[base + offset].isUndefined {
            keys.append(program.keyLists[Int(instruction.c)][offset])
            values.append(stack[base + offset])
          }
          object = OrderedObject(distinctKeys: keys, values: values)
        }
        stack.drop(count)
        stack.append(.object(object))
      case .newObject:
        var object = OrderedObject()
        object.reserveCapacity(8)
        stack.append(.object(object))
      case .setMember:
        if let reason = meter.step() { return .limited(reason, at: pc - 1) }
        let value = stack.removeLast()
        if !value.isUndefined, case .array(let alias) = constants[Int(instruction.a)] {
          if case .object(var object) = stack.removeLast() {
            if alias.count == 1 {
              object[Self.key(alias[0])] = value
            } else {
              Self.set(&object, path: alias.map(Self.key)[...], to: value)
            }
            stack.append(.object(object))
          } else {
            stack.append(.undefined)
          }
        }
      case .mergeMembers:
        let source = stack.removeLast()
        if case .object(let members) = source {
          // The target below is always an object (the compiler pushes one first); were it not,
          // Undefined takes its place so that the stack stays balanced.
          if case .object(var object) = stack.removeLast() {
            object.merge(members)
            stack.append(.object(object))
          } else {
            stack.append(.undefined)
          }
        }
      case .iterateBegin:
        let source = stack.removeLast()
        if instruction.b > 0, let frame = projectedFrame(instruction, constants, context, version) {
          frames.append(frame)
          break
        }
        switch source {
        case .array(let elements):
          // Room for every element at once: one allocation, not one per doubling.
          var results: [Value] = []
          results.reserveCapacity(elements.count)
          frames.append(
            IterationFrame(
              elements: elements, next: 0, results: results, isObjectSource: false, current: .undefined))
        case .object:
          frames.append(
            IterationFrame(
              elements: [source], next: 0, results: [], isObjectSource: true, current: .undefined))
        default:
          stack.append(.undefined)
          pc = Int(instruction.a)
        }
      case .iterateNext:
        if let reason = meter.step() { return .limited(reason, at: pc - 1) }
        let index = frames.count - 1
        if frames[index].next < frames[index].count {
          if frames[index].stride == 0 { frames[index].current = frames[index].elements[frames[index].next] }
          frames[index].next += 1
        } else {
          pc = Int(instruction.a)
        }
      case .iterateAppend:
        let result = stack.removeLast()
        if !result.isUndefined {
          if let reason = meter.keep(result) { return .limited(reason, at: pc - 1) }
          frames[frames.count - 1].results.append(result)
        }
      case .iterateEnd:
        let frame = frames.removeLast()
        if frame.isObjectSource {
          stack.append(frame.results.first ?? .undefined)
        } else {
          stack.append(.array(frame.results))
        }
      case .noMatch:
        return .noMatch
      case .output:
        return .value(stack.removeLast())
      case .passthrough:
        return .passthrough
      case .outputPath:
        let slot = Int(instruction.a)
        if writesResult, view.deferredForm(ofPath: slot) != .unknown, view.deferredRange(ofPath: slot) != nil
        {
          var bytes: [UInt8] = []
          appendContainer(slot, context, version, into: &bytes)
          return .bytes(bytes)
        }
        if view.deferredRange(ofPath: slot) != nil { buildDeferred(slot, context: context, version: version) }
        return .value(slot < view.values.count ? view.values[slot] : .undefined)
      case .outputRecord:
        let slots = program.recordSlots[Int(instruction.c)]
        var onStack = 0
        for slot in slots where slot < 0 { onStack += 1 }
        if writesResult,
          let bytes = recordBytes(
            context, names: program.recordNames[Int(instruction.c)], slots: slots, values: stack.top(onStack),
            version)
        {
          stack.drop(onStack)
          return .bytes(bytes)
        }
        // Built as `makeRecord` builds it, the paths' values read from the view.
        var values: [Value] = []
        values.reserveCapacity(slots.count)
        var next = stack.count - onStack
        var defined = true
        for slot in slots {
          let value: Value
          if slot < 0 {
            value = stack[next]
            next += 1
          } else {
            if view.deferredRange(ofPath: slot) != nil {
              buildDeferred(slot, context: context, version: version)
            }
            value = slot < view.values.count ? view.values[slot] : .undefined
          }
          if value.isUndefined { defined = false }
          values.append(value)
        }
        stack.drop(onStack)
        let keys = program.keyLists[Int(instruction.c)]
        if defined { return .value(.object(OrderedObject(distinctKeys: keys, values: values))) }
        var kept: [String] = []
        var keptValues: [Value] = []
        for (index, value) in values.enumerated() where !value.isUndefined {
          kept.append(keys[index])
          keptValues.append(value)
        }
        return .value(.object(OrderedObject(distinctKeys: kept, values: keptValues)))
      case .passthroughPlus:
        if let reason = meter.step() { return .limited(reason, at: pc - 1) }
        let first = Int(instruction.a)
        let count = Int(instruction.b)
        let starLast = instruction.c != 0
        if writesResult,
          let bytes = payloadWithMembers(
            context, constants, first: first, values: stack.top(count), starLast: starLast, version)
        {
          stack.drop(count)
          return .bytes(bytes)
        }
        // The object is built: `mergeMembers` and one `setMember` per value, in the list's order.
        var object = OrderedObject()
        let document = view.document ?? payloadDocument(context, version: version)
        if !starLast, case .object(let members) = document { object.merge(members) }
        let base = stack.count - count
        for offset in 0..<count where !stack[base + offset].isUndefined {
          object[Self.key(constants[first + offset])] = stack[base + offset]
        }
        if starLast, case .object(let members) = document { object.merge(members) }
        stack.drop(count)
        return .value(.object(object))
      }
    }
    return .value(stack.last ?? .undefined)
  }

  /// Builds the array or object at path `index` that the reader validated and left for now (once:
  /// the view keeps it). Out of line so the run loop does not make the view's arrays unique up
  /// front, which costs an allocation per message when they are empty.
  @inline(never)
  private mutating func buildDeferred(_ index: Int, context: EvaluationContext, version: SQLVersion) {
    let range = view.deferredRanges[2 * index]..<view.deferredRanges[2 * index + 1]
    view.values[index] = JSONReader.build(context.payload, range: range, options: .for(version))
    view.deferredRanges[2 * index] = -1
  }

  /// The frame of a nested query over payload path C that reads its elements' members named in
  /// constant B - 1 only, taken from the path's bytes when the reader left them unbuilt; nil when
  /// it did not (the path was built already: the query iterates its value).
  @inline(never)
  private mutating func projectedFrame(
    _ instruction: Instruction, _ constants: [Value], _ context: EvaluationContext, _ version: SQLVersion
  ) -> IterationFrame? {
    guard let range = view.deferredRange(ofPath: Int(instruction.c)),
      case .array(let names) = constants[Int(instruction.b) - 1]
    else { return nil }
    let (values, count, isObject) = JSONReader.projectMembers(
      context.payload, range: range, names: names, options: .for(version))
    var results: [Value] = []
    if !isObject { results.reserveCapacity(count) }
    return IterationFrame(
      elements: values, next: 0, results: results, isObjectSource: isObject, current: .undefined,
      stride: names.count)
  }

  /// Sets a SET variable. Out of line, like `buildDeferred`: written in the run loop, the store
  /// made the optimiser make `variables` unique when the run starts, a call into the array's copying
  /// code for every message, even for the shared empty array of a program without SET.
  @inline(never)
  private static func store(_ value: Value, at index: Int, in variables: inout [Value]) {
    variables[index] = value
  }

  /// `outputRecord` written out directly, member by member, without building the object: a path's
  /// array or object the reader found spelled as the writer would spell it is copied as its bytes
  /// (respelled when only whitespace and number spellings differ). Nil, for the caller to build the
  /// object instead, when a deferred container is spelled otherwise, or a value is neither a
  /// scalar, a string, nor an array of at most 256 of them (a nested query's): only these are
  /// judged against the result-size limit here, in one pass.
  private func recordBytes(
    _ context: EvaluationContext, names: Program.EncodedNames, slots: [Int],
    values: UnsafeBufferPointer<Value>, _ version: SQLVersion
  ) -> [UInt8]? {
    var extra = 0
    var next = 0
    for slot in slots {
      let value: Value
      if slot < 0 {
        value = values[next]
        next += 1
      } else if let range = view.deferredRange(ofPath: slot) {
        guard view.deferredForm(ofPath: slot) != .unknown else { return nil }
        extra &+= range.count
        continue
      } else {
        value = slot < view.values.count ? view.values[slot] : .undefined
      }
      switch value {
      case .undefined: continue
      case .array(let elements) where elements.count <= 256:
        extra &+= 2
        for element in elements {
          guard let size = Self.scalarBytes(element) else { return nil }
          extra &+= size &+ 1
        }
      default:
        guard let size = Self.scalarBytes(value) else { return nil }
        extra &+= size
      }
    }
    guard extra < EvaluationLimits.resultBytes / 2 else { return nil }
    // Written in the sink (stack scratch, no per-byte checks of the array's), then copied out once.
    return ByteSink.withScratch { sink in
      sink.append(0x7B)
      next = 0
      for (index, slot) in slots.enumerated() {
        let value: Value
        if slot < 0 {
          value = values[next]
          next += 1
        } else if view.deferredRange(ofPath: slot) != nil {
          if sink.count > 1 { sink.append(0x2C) }
          names.write(index, into: &sink)
          appendContainer(slot, context, version, into: &sink)
          continue
        } else {
          value = slot < view.values.count ? view.values[slot] : .undefined
        }
        if value.isUndefined { continue }
        if sink.count > 1 { sink.append(0x2C) }
        names.write(index, into: &sink)
        JSONWriter.writeCompact(value, into: &sink)
      }
      sink.append(0x7D)
      return sink.array()
    }
  }

  /// Appends what the writer would give for the array or object the reader deferred at path
  /// `slot`, whose form the reader found: its bytes as they are, or respelled (whitespace, numbers).
  private func appendContainer<Output: ByteOutput & ~Copyable>(
    _ slot: Int, _ context: EvaluationContext, _ version: SQLVersion, into bytes: inout Output
  ) {
    guard let range = view.deferredRange(ofPath: slot) else { return }
    if view.deferredForm(ofPath: slot) == .canonical {
      context.payload.withUnsafeBufferPointer {
        bytes.append(bytes: UnsafeBufferPointer(rebasing: $0[range]))
      }
    } else {
      JSONReader.respellingNumbers(Array(context.payload[range]), options: .for(version))
        .withUnsafeBufferPointer { bytes.append(bytes: $0) }
    }
  }

  /// About the most bytes the writer gives for a scalar or a string (every escape at its longest, a
  /// number counted as 48), for the result-size limit; nil for any other value.
  private static func scalarBytes(_ value: Value) -> Int? {
    switch value {
    case .null, .bool, .int, .decimal: 48
    case .string(let text): 6 &* text.utf8.count &+ 2
    default: nil
    }
  }

  /// Writes `"name":`, after a comma unless the object is still `empty` (which it is no longer).
  private static func writeName(_ name: String, into bytes: inout [UInt8], empty: inout Bool) {
    if !empty { bytes.append(0x2C) }
    empty = false
    JSONWriter.writeString(name, into: &bytes)
    bytes.append(0x3A)
  }

  /// `passthroughPlus` without building the payload: its bytes (respelled where its numbers
  /// need it) with `values` written after its last member, or before its first with `starLast`,
  /// under the keys at constants `first...`.
  /// Nil, for the caller to build the object instead, when the payload is not an object that
  /// passes through, has one of the keys already, or a value is not a scalar or a string (a
  /// Binary member must stay Binary in the result's value; a container may be large).
  private func payloadWithMembers(
    _ context: EvaluationContext, _ constants: [Value], first: Int, values: UnsafeBufferPointer<Value>,
    starLast: Bool, _ version: SQLVersion
  ) -> [UInt8]? {
    guard view.kind == .object, view.isCanonical || view.respellsNumbers else { return nil }
    var extra = 0
    for (offset, value) in values.enumerated() where !value.isUndefined {
      guard let size = Self.scalarBytes(value) else { return nil }
      extra &+= size
      guard case .int(let path) = constants[first + values.count + offset], path < view.values.count,
        view.values[path].isUndefined, view.deferredRange(ofPath: path) == nil
      else { return nil }
      if case .string(let key) = constants[first + offset] { extra &+= 6 &* key.utf8.count &+ 4 }
    }
    let payload =
      view.isCanonical
      ? context.payload : JSONReader.respellingNumbers(context.payload, options: .for(version))
    guard payload.count &+ extra < EvaluationLimits.resultBytes else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(payload.count + extra)
    // `{` and the payload's members, or `{` alone when they come last.
    bytes.append(contentsOf: starLast ? payload.prefix(1) : payload.dropLast())
    var empty = starLast || payload.count == 2
    for (offset, value) in values.enumerated() where !value.isUndefined {
      Self.writeName(Self.key(constants[first + offset]), into: &bytes, empty: &empty)
      JSONWriter.writeCompact(value, into: &bytes)
    }
    if starLast, payload.count > 2 {
      if !empty { bytes.append(0x2C) }
      bytes.append(contentsOf: payload.dropFirst())
    } else {
      bytes.append(0x7D)
    }
    return bytes
  }

  private func payloadDocument(_ context: EvaluationContext, version: SQLVersion) -> Value {
    (try? JSONReader.parse(context.payload, options: .for(version))) ?? .binary(context.payload)
  }

  @inline(__always)
  private static func key(_ value: Value) -> String {
    if case .string(let text) = value { return text }
    return ""
  }

  /// Sets `path` in `object`, creating intermediate objects (dotted aliases: `AS a.b.c`).
  private static func set(_ object: inout OrderedObject, path: ArraySlice<String>, to value: Value) {
    guard let first = path.first else { return }
    if path.count == 1 {
      object[first] = value
      return
    }
    var inner: OrderedObject
    if case .object(let existing)? = object[first] { inner = existing } else { inner = OrderedObject() }
    set(&inner, path: path.dropFirst(), to: value)
    object[first] = .object(inner)
  }

  private static func binaryOperator(_ opcode: Opcode) -> BinaryOperator {
    switch opcode {
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
    default: .remainder
    }
  }
}

/// The storage of a VM's operand stack, kept between runs; empty (no live values) outside a run.
private final class StackStorage: @unchecked Sendable {
  // Unchecked: a VM only runs on storage it references uniquely (`run` checks), so no two runs share it.
  var base: UnsafeMutablePointer<Value>
  var capacity: Int

  init(capacity: Int = 32) {
    base = .allocate(capacity: capacity)
    self.capacity = capacity
  }

  deinit { base.deallocate() }
}

/// The operand stack during one run: values in raw storage, pushed and popped without the
/// uniqueness and bounds checks of an array (the compiler's code never pops an empty stack).
private struct OperandStack: ~Copyable {
  private var base: UnsafeMutablePointer<Value>
  private var capacity: Int
  private(set) var count = 0

  init(_ storage: StackStorage) {
    base = storage.base
    capacity = storage.capacity
  }

  var isEmpty: Bool { count == 0 }
  var last: Value? { count > 0 ? base[count - 1] : nil }

  subscript(index: Int) -> Value {
    @inline(__always) get { base[index] }
    @inline(__always) set { base[index] = newValue }
  }

  @inline(__always)
  mutating func append(_ value: Value) {
    if count == capacity { grow() }
    (base + count).initialize(to: value)
    count += 1
  }

  @inline(__always)
  @discardableResult
  mutating func removeLast() -> Value {
    count -= 1
    return (base + count).move()
  }

  /// The top `count` values, bottom first: valid until the next push or drop.
  @inline(__always)
  func top(_ count: Int) -> UnsafeBufferPointer<Value> {
    UnsafeBufferPointer(start: base + (self.count - count), count: count)
  }

  /// Removes the top `count` values.
  @inline(__always)
  mutating func drop(_ count: Int) {
    self.count -= count
    (base + self.count).deinitialize(count: count)
  }

  private mutating func grow() {
    let larger = UnsafeMutablePointer<Value>.allocate(capacity: capacity * 2)
    larger.moveInitialize(from: base, count: count)
    base.deallocate()
    base = larger
    capacity *= 2
  }

  /// Ends the run: drops what is left and hands the (possibly grown) storage back.
  mutating func finish(into storage: StackStorage) {
    drop(count)
    storage.base = base
    storage.capacity = capacity
  }
}
