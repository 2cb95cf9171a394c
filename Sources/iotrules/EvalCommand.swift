import ArgumentParser
import DevTools
import Foundation
import IoTSQL
import RulesEngine

/// `iotrules eval`: runs one statement on one message, or a batch of requests (one JSON object a line).
struct EvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Run a statement on one message and print the outgoing payload.",
    discussion: """
      One shot: --sql S --topic T --payload JSON (or --payload-file F). Prints the outgoing payload \
      (pretty on a terminal, the exact bytes when piped) or says there was no match; exit 0 either \
      way, 65 for a statement that does not compile or an evaluation stopped by its limits, 74 for \
      an input file that cannot be read or standard output that lost text.

      Batch: --batch FILE (or - for standard input) reads one request a line:
        {"sql", "topic", "payload" | "payload_base64",
         "sql_version"?, "context"?, "template"?}
      ("payload" is the payload as a JSON value, {"temp": 31}, not its text in a string: \
      "{\\"temp\\": 31}" is a String payload; "payload_base64" gives any bytes) \
      and answers one line each, in order:
        {"match": true, "payload": "..."}
        {"match": true, "payload_base64": "..."}   (+ "template")
        {"match": false}
        {"error": {"kind": "parse|compile|runtime|input",
                   "message", "line", "column"}}
      ("line" and "column" place a parse, compile or runtime error in the SQL or template; an \
      input error is the request line's own and has neither)
      """
  )

  @Option(help: "The IoT SQL statement.")
  var sql: String?

  @Option(
    help: "The topic the message was published to (default: one the FROM filter matches, each + or # as x).")
  var topic: String?

  @Option(help: "The payload: JSON text, or any text (a non-JSON payload is Binary); default {}.")
  var payload: String?

  @Option(name: .customLong("payload-file"), help: "Read the payload bytes from a file.")
  var payloadFile: String?

  @Option(name: .customLong("client-id"), help: "What clientid() returns.")
  var clientID: String?

  @Option(help: "A substitution template to render for the message, e.g. 'out/${topic(2)}'.")
  var template: String?

  @Option(help: "Answer a batch of requests from FILE, or - for standard input.")
  var batch: String?

  @OptionGroup var version: SQLVersionOption

  func validate() throws {
    if batch != nil {
      if sql != nil || topic != nil || payload != nil || payloadFile != nil {
        throw ValidationError(
          "--batch takes its statements from the file; drop --sql, --topic, --payload and --payload-file")
      }
      // Each line carries its own: an option given here would be silently ignored.
      if version.isGiven || clientID != nil || template != nil {
        throw ValidationError(
          "--batch takes these from each line (\"sql_version\", \"context\": {\"clientid\"}, \"template\"); "
            + "drop --sql-version, --client-id and --template")
      }
      return
    }
    guard sql != nil else { throw ValidationError("missing --sql (or --batch FILE)") }
    if payload != nil && payloadFile != nil {
      throw ValidationError("give --payload or --payload-file, not both")
    }
    if let topic, let problem = TopicFilter.nameProblem(topic) { throw ValidationError("--topic \(problem)") }
  }

  func run() throws {
    if let batch {
      try BatchEvaluator.run(path: batch)
      return
    }
    try runOnce()
  }

  private func runOnce() throws {
    try requireUTF8("--sql")
    try requireUTF8("--template")
    // As a Kafka key that is not UTF-8 is refused: U+FFFD would stand for different bytes alike.
    try requireUTF8("--topic")
    try requireUTF8("--client-id")
    let sqlText = sql ?? ""
    let sqlVersion = try version.resolve()
    let program: Program
    do {
      program = try Compiler.compile(sqlText, version: sqlVersion)
    } catch {
      Console.err(error.description)
      throw ExitCodes.badRule
    }
    let lines = Diagnostic.SourceLines(sqlText)
    for warning in program.warnings { Console.err(warning.rendered(in: lines)) }
    var compiledTemplate: Template?
    if let template {
      do {
        compiledTemplate = try Template.compile(
          template, version: sqlVersion, variables: program.variableNames)
      } catch {
        Console.err("template: " + error.description)
        throw ExitCodes.badRule
      }
      // What `check` says of the same template in a rule file (`${dev}` under `SELECT x AS dev`
      // renders the message's `dev`), here where templates are tried out.
      let (compiler, reads) = RuleFile.warnings(
        of: compiledTemplate!, program: program, computed: RuleFile.namesTheSelectComputes(sqlText))
      for warning in compiler + reads { Console.err("template: " + warning.rendered(in: template)) }
    }
    let bytes: [UInt8]
    if let payloadFile {
      bytes = try readFile(payloadFile)
    } else {
      // As typed: bytes that are not UTF-8 make a Binary payload, as they would in the daemon.
      bytes = rawArgument("--payload") ?? Array((payload ?? "{}").utf8)
    }
    let topicName = topic ?? program.topicFilter.flatMap(Self.exampleTopic) ?? ""
    if !program.fromMatches(topicName), let filter = program.topicFilter {
      Console.err("no match: topic '\(topicName)' does not match FROM '\(filter)'")
      return
    }
    // Such a rule sees only the messages published to its Basic Ingest topic; eval runs it anyway.
    if program.topicFilter == nil, let note = BasicIngest.noFromNote(topic: topicName) { Console.err(note) }
    let context = EvaluationContext(
      topic: topicName, payload: bytes, clientID: clientID, timestampMs: nowMilliseconds())
    var machine = VirtualMachine()
    let overrunsBefore = RegexBudget.overruns
    let result = machine.evaluate(program, context: context)
    // As `run` logs them: a match stopped by its budget gave Undefined, which looks like no match.
    let overruns = RegexBudget.overruns - overrunsBefore
    if overruns > 0 {
      Console.err("note: " + RegexBudget.note(stopped: overruns) + ", as the daemon logs them")
    }
    if let error = machine.fieldsOfNonJSONError {
      Console.err(
        "warning: the statement reads fields of a payload that is not JSON (\(error)): they are Undefined, as in AWS "
          + "(the daemon counts it as the rule's evaluation error)")
    } else if payload != nil, payloadFile == nil,
      case .failure(let error) = Result(catching: { try JSONReader.parse(bytes) })
    {
      // Typed on the command line, a payload is meant as JSON: a typo would pass silently as Binary.
      Console.err(
        "note: --payload is not JSON (\(error)): it is a Binary payload of \(bytes.count) bytes, as AWS takes it"
      )
    }
    guard let evaluation = result else {
      if let stopped = machine.evaluationLimitDiagnostic {
        Console.err(stopped.rendered(in: sqlText))
        throw ExitCode(65)
      }
      Console.err("no match: the WHERE clause is not true for this message")
      return
    }
    if Console.stdoutIsTerminal {
      switch evaluation.value {
      case .binary(let raw):
        Console.out("binary payload, \(raw.count) bytes, base64: " + Data(raw).base64EncodedString())
      case .undefined:
        Console.out("(empty payload)")
      case let value:
        Console.out(JSONWriter.prettyString(value))
      }
    } else {
      // The exact outgoing bytes, nothing added: `> out.bin` holds what an action would receive.
      Console.write(evaluation.payload)
    }
    if let compiledTemplate {
      // As in the REPL and rule tests, no secret is read: `get_secret` shows as `***` (it rendered
      // as nothing, without a word).
      var templateContext = context
      templateContext.secrets = PlaceholderSecrets()
      do {
        let rendered = try compiledTemplate.render(context: templateContext, variables: evaluation.variables)
        Console.err("template: " + rendered)
      } catch {
        Console.err("template: " + error.diagnostic.rendered(in: compiledTemplate.source))
        throw ExitCode(65)
      }
    }
  }

  /// A topic that matches a filter when none was given: wildcards become `x`.
  static func exampleTopic(_ filter: String) -> String? { TopicFilter.exampleTopic(filter) }
}

/// The batch protocol of `eval --batch`: one request a line in, one answer a line out, in order.
enum BatchEvaluator {
  /// Reads requests from `path` (or standard input for `-`) and answers each on standard output.
  static func run(path: String) throws {
    let handle: FileHandle
    if path == "-" {
      handle = FileHandle.standardInput
    } else {
      guard let file = FileHandle(forReadingAtPath: path) else { throw unreadable(path) }
      handle = file
    }
    var evaluator = Evaluator()
    var pending: [UInt8] = []
    // How far `pending` has been searched for a newline: a long line is scanned once, not again
    // after every read (a 64 MiB request took 43 s).
    var scanned = 0
    // Set while the rest of a line longer than `maxLineBytes` is skipped (it has had its answer).
    var skipping = false
    var chunk = [UInt8](repeating: 0, count: 65_536)
    let tooLong = "the request line is longer than \(maxLineBytes / (1 << 20)) MiB"
    while true {
      // `read(2)` returns what has arrived: a tool that writes one request and waits for its
      // answer gets it at once (`FileHandle.read(upToCount:)` waited for 64 KiB or the end).
      let count = chunk.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        let reason = String(cString: strerror(errno))
        if path != "-" { throw unreadable(path) }
        Console.err("iotrules: error: reading standard input: \(reason)")
        throw ExitCodes.io
      }
      if count == 0 || Console.outputFailed { break }
      pending.append(contentsOf: chunk[..<count])
      var start = 0
      // Answers that cannot be written (a full disk) end the batch at the first lost one: the rest
      // would be lost too.
      while !Console.outputFailed,
        let newline = pending[max(start, scanned)...].firstIndex(of: UInt8(ascii: "\n"))
      {
        if skipping {
          skipping = false
        } else if newline - start - (newline > start && pending[newline - 1] == UInt8(ascii: "\r") ? 1 : 0)
          > maxLineBytes
        {
          // (A CR LF line's CR is its ending, not its text: it counts as an LF line's.)
          // Its end came in the read that took it past the bound.
          evaluator.refuse(tooLong)
        } else {
          evaluator.answer(Array(pending[start..<newline]))
        }
        start = newline + 1
        scanned = start
      }
      scanned = pending.count
      pending.removeFirst(start)
      scanned -= start
      if skipping {
        pending.removeAll(keepingCapacity: true)
        scanned = 0
      } else if pending.count > maxLineBytes + 1 {
        // (One byte more than the bound: a CR LF line's CR may wait for its LF.)
        // As the replay source does: a line this long is no request; it is answered, not held.
        evaluator.refuse(tooLong)
        pending.removeAll(keepingCapacity: true)
        scanned = 0
        skipping = true
      }
    }
    if !pending.isEmpty, !skipping, !Console.outputFailed { evaluator.answer(pending) }
  }

  /// The longest request line answered: 16 MiB, as the replay source's longest line.
  static let maxLineBytes = 16 << 20

  /// Answers requests, caching compiled programs by (version, SQL).
  struct Evaluator {
    /// By version and SQL text, byte for byte (`'caf\u{E9}'` and `'cafe\u{301}'` are two statements).
    private var programs: [ExactText: Result<Program, SQLError>] = [:]
    private var machine = VirtualMachine()
    private var output: [UInt8] = []

    /// Answers a line that is not read with an `input` error.
    mutating func refuse(_ message: String) { write(BatchError.input(message).answer) }

    mutating func answer(_ line: [UInt8]) {
      var trimmed = line[...]
      // A UTF-8 byte order mark at the start of a line (Windows tools write one; files joined with
      // `cat` have one at the start of each) is no part of the request, as in the replay source.
      if trimmed.starts(with: [0xEF, 0xBB, 0xBF]) { trimmed = trimmed.dropFirst(3) }
      while let last = trimmed.last, last == UInt8(ascii: "\r") || last == 0x20 || last == 0x09 {
        trimmed = trimmed.dropLast()
      }
      if trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
      let answer: Value
      do {
        answer = try evaluate(Array(trimmed))
      } catch let error as BatchError {
        answer = error.answer
      } catch {
        answer = BatchError.input("\(error)").answer
      }
      write(answer)
    }

    private mutating func write(_ answer: Value) {
      output.removeAll(keepingCapacity: true)
      JSONWriter.write(answer, into: &output)
      // One line to any reader: U+2028 and its kin spelled as escapes (the same JSON).
      output = JSONWriter.escapingLineSeparators(output)
      output.append(UInt8(ascii: "\n"))
      Console.write(output)
    }

    private mutating func evaluate(_ line: [UInt8]) throws -> Value {
      let request: Value
      do {
        // Deeper than a payload may be: the payload's bytes go to the engine as written, which
        // takes 512 levels and reads a deeper one as Binary (a 512-deep payload inside the request
        // was refused as nesting deeper than 512).
        request = try Self.request(line)
      } catch {
        throw BatchError.input("the request is not JSON: \(error)")
      }
      guard case .object(let fields) = request else {
        throw BatchError.input("the request is not a JSON object")
      }
      guard case .string(let sql)? = fields["sql"] else {
        throw BatchError.input("the request has no \"sql\" string")
      }
      guard case .string(let topic)? = fields["topic"] else {
        throw BatchError.input("the request has no \"topic\" string")
      }
      if let problem = TopicFilter.nameProblem(topic) { throw BatchError.input("\"topic\" \(problem)") }
      var version = SQLVersion.default
      // An optional field written as null is absent (a serializer that writes every field:
      // Go without omitempty, Python's asdict), as in a replay line.
      if let given = fields["sql_version"], given != .null {
        guard case .string(let name) = given, let parsed = SQLVersion(string: name) else {
          throw BatchError.input(
            "\"sql_version\" must be \"2016-03-23\", \"2015-10-08\" or \"beta\" (the newest, 2016-03-23)")
        }
        version = parsed
      }
      let payload = try Self.payload(of: line, fields: fields)
      var context = EvaluationContext(topic: topic, payload: payload, timestampMs: nowMilliseconds())
      if let pinned = fields["context"], pinned != .null { try Self.pin(pinned, into: &context) }

      let program = try compiled(sql, version: version)
      var template: Template?
      if let given = fields["template"], given != .null {
        guard case .string(let text) = given else { throw BatchError.input("\"template\" must be a string") }
        do {
          template = try Template.compile(text, version: version, variables: program.variableNames)
        } catch {
          throw BatchError.sql(error, prefix: "template: ")
        }
      }
      if !program.fromMatches(topic) { return .object(["match": .bool(false)]) }
      guard let evaluation = machine.evaluate(program, context: context) else {
        if let stopped = machine.evaluationLimitDiagnostic { throw BatchError.runtime(stopped) }
        return .object(["match": .bool(false)])
      }
      var answer: OrderedObject = ["match": .bool(true)]
      if let text = String(validating: evaluation.payload, as: UTF8.self) {
        answer["payload"] = .string(text)
      } else {
        answer["payload_base64"] = .string(Data(evaluation.payload).base64EncodedString())
      }
      if let template {
        var templateContext = context
        templateContext.secrets = PlaceholderSecrets()
        do {
          answer["template"] = .string(
            try template.render(context: templateContext, variables: evaluation.variables, using: &machine))
        } catch {
          throw BatchError.runtime(error.diagnostic, prefix: "template: ")
        }
      }
      return .object(answer)
    }

    private mutating func compiled(_ sql: String, version: SQLVersion) throws -> Program {
      let key = ExactText(version.rawValue + "\u{0}" + sql)
      let result: Result<Program, SQLError>
      if let cached = programs[key] {
        result = cached
      } else {
        do {
          result = .success(try Compiler.compile(sql, version: version))
        } catch {
          result = .failure(error)
        }
        if programs.count > 1024 { programs.removeAll() }
        programs[key] = result
      }
      switch result {
      case .success(let program): return program
      case .failure(let error): throw BatchError.sql(error, prefix: "")
      }
    }

    /// The request line read. A `payload` that follows JSON's grammar but is more than is read as
    /// JSON (a lone surrogate escape, `"\ud800"`; nesting past 4,096) is set aside for the reading
    /// (its bytes are the payload, Binary, as a replay line's and `--payload`'s are): the request
    /// was refused as not JSON.
    static func request(_ line: [UInt8]) throws(JSONError) -> Value {
      let options = JSONReadOptions(wholeDecimalsAsInt: false, maxDepth: 4_096)
      do {
        return try JSONReader.parse(line, options: options)
      } catch  where error.isBeyondLimits {
        guard let span = line.withUnsafeBufferPointer({ JSONReader.memberSpan(named: "payload", in: $0) }),
          span.contains(error.offset)
        else { throw error }
        let rest = Array(line[..<span.lowerBound]) + [UInt8(ascii: "0")] + Array(line[span.upperBound...])
        // The rest's own problem is said as the line's was (its offsets would be the shorter line's).
        guard let request = try? JSONReader.parse(rest, options: options) else { throw error }
        return request
      }
    }

    /// The payload bytes: the exact text of the request's `payload` member, or the decoded base64.
    static func payload(of line: [UInt8], fields: OrderedObject) throws -> [UInt8] {
      if let encoded = fields["payload_base64"], encoded != .null {
        // As in a replay line: `"payload": null` beside it is a serializer writing every field.
        if let inline = fields["payload"], inline != .null {
          throw BatchError.input("both \"payload\" and \"payload_base64\": give one")
        }
        guard case .string(let text) = encoded, let data = Base64.decode(text, requiringPadding: true) else {
          throw BatchError.input("\"payload_base64\" is not base64")
        }
        return data
      }
      guard fields["payload"] != nil else {
        throw BatchError.input("the request has no \"payload\" or \"payload_base64\"")
      }
      guard let span = line.withUnsafeBufferPointer({ JSONReader.memberSpan(named: "payload", in: $0) })
      else {
        throw BatchError.input("cannot locate the \"payload\" member")
      }
      return Array(line[span])
    }

    /// Applies the request's `context` to what the context functions return.
    static func pin(_ value: Value, into context: inout EvaluationContext) throws {
      do {
        try ContextPins.apply(value, to: &context)
      } catch {
        throw BatchError.input(error.message)
      }
    }
  }
}

/// An answer that is an error, as the protocol writes it.
enum BatchError: Error {
  case input(String)
  case sql(SQLError, prefix: String)
  /// The evaluation (or the template's rendering: `prefix` says so) was stopped
  /// (``EvaluationLimits``), where the diagnostic says.
  case runtime(Diagnostic, prefix: String = "")

  var answer: Value {
    var error: OrderedObject
    switch self {
    case .input(let message):
      error = ["kind": .string("input"), "message": .string(message)]
    case .runtime(let stopped, let prefix):
      error = [
        "kind": .string("runtime"), "message": .string(prefix + stopped.message),
        "line": .int(stopped.range.start.line), "column": .int(stopped.range.start.column),
      ]
    case .sql(let failure, let prefix):
      let first = failure.first
      error = [
        "kind": .string(first.stage.rawValue), "message": .string(prefix + first.message),
        "line": .int(first.range.start.line), "column": .int(first.range.start.column),
      ]
    }
    return .object(["error": .object(error)])
  }
}
