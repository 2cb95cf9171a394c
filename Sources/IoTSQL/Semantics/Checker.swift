/// Finds what would make a parsed statement wrong before it runs: unknown functions (with "did you
/// mean"), wrong arity, functions or constructs the chosen SQL version lacks, invalid topic filters,
/// SET misuse, unknown cast types and variables. Every finding has a position.
struct Checker {
  let version: SQLVersion
  private(set) var diagnostics: [Diagnostic] = []
  /// The SET variables visible at this point.
  private var variables: Set<String>
  /// True while a rule's statement is checked (not a template's expression).
  private var inStatement = false

  /// The longest SET variable name AWS accepts.
  static let maxVariableName = 64
  /// AWS's quota on the variables of one statement: more run here, with a warning.
  static let maxVariables = 10

  init(version: SQLVersion, variables: [String] = []) {
    self.version = version
    self.variables = Set(variables)
  }

  /// True when an error (not only warnings) was found.
  var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

  private mutating func error(_ message: String, at range: SourceRange) {
    diagnostics.append(Diagnostic(stage: .compile, message, at: range))
  }

  private mutating func warning(_ message: String, at range: SourceRange, related: SourceLocation? = nil) {
    diagnostics.append(Diagnostic(.warning, stage: .compile, message, at: range, related: related))
  }

  /// The deepest nesting the values a statement builds may reach (as a payload's).
  static let maxBuiltDepth = 512

  /// How many levels the values `expression` builds can add above what it reads: an array or
  /// object literal, or a nested query, one each; a variable, what its own value added.
  static func builtDepth(_ expression: Expression, variables: [String: Int]) -> Int {
    func depth(_ expression: Expression) -> Int {
      switch expression.kind {
      case .literal, .field, .wildcard: return 0
      case .variable(let name): return variables[name] ?? 0
      case .member(let base, _): return depth(base)
      case .unary(_, let operand): return depth(operand)
      case .cast(let operand, _, _): return depth(operand)
      case .binary(_, let left, let right): return max(depth(left), depth(right))
      case .call(_, let arguments): return arguments.map(depth).max() ?? 0
      case .caseWhen(let subject, let branches, let otherwise):
        let parts = [subject, otherwise].compactMap { $0 } + branches.flatMap { [$0.when, $0.then] }
        return parts.map(depth).max() ?? 0
      case .array(let elements): return 1 + (elements.map(depth).max() ?? 0)
      case .object(let members): return 1 + (members.map { depth($0.value) }.max() ?? 0)
      case .nested(let query):
        let parts = [query.from] + (query.whereClause.map { [$0] } ?? []) + query.select.expressions
        return 1 + (parts.map(depth).max() ?? 0)
      }
    }
    return depth(expression)
  }

  mutating func check(_ statement: Statement) {
    inStatement = true
    defer { inStatement = false }
    var seen: Set<String> = []
    // How deep the values each variable holds can nest beyond what they read: freeing a value
    // recurses once per level, and 60,000 levels built by SET variables wrapping one another
    // (`SET @b = [@a], @c = [@b], ...`) overflowed the stack and stopped the process.
    var depths: [String: Int] = [:]
    var reportedDepth = false
    for assignment in statement.variables {
      if assignment.name.count > Self.maxVariableName {
        error(
          "variable '@\(assignment.name)' is longer than \(Self.maxVariableName) characters",
          at: assignment.range)
      }
      if !seen.insert(assignment.name).inserted {
        error(
          "variable '@\(assignment.name)' is assigned twice; SET variables are assigned once",
          at: assignment.range)
      } else if seen.count == Self.maxVariables + 1 {
        warning(
          "'@\(assignment.name)' is variable \(seen.count): AWS IoT refuses more than \(Self.maxVariables) SET variables in a statement",
          at: assignment.range)
      }
      check(assignment.value)
      variables.insert(assignment.name)
      let depth = Self.builtDepth(assignment.value, variables: depths)
      depths[assignment.name] = depth
      if depth > Self.maxBuiltDepth, !reportedDepth {
        reportedDepth = true
        error(
          "'@\(assignment.name)' holds values nested \(depth) levels deep (array and object literals and nested "
            + "queries around other variables): at most \(Self.maxBuiltDepth), as in a payload",
          at: assignment.range)
      }
    }
    for expression in statement.select.expressions
    where Self.builtDepth(expression, variables: depths) > Self.maxBuiltDepth {
      error(
        "this builds values nested more than \(Self.maxBuiltDepth) levels deep (array and object literals and "
          + "nested queries around SET variables): at most \(Self.maxBuiltDepth), as in a payload",
        at: expression.range)
    }
    if let from = statement.from {
      if !from.isQuoted && from.filter.utf8.first == UInt8(ascii: "@") {
        warning(
          "FROM takes the topic filter itself, not a variable: FROM \(from.filter) is the topic '\(from.filter)' "
            + "(SET variables are read in SELECT and WHERE); write the filter in single quotes",
          at: from.range)
      } else if !from.isQuoted, let first = from.filter.unicodeScalars.first,
        let last = from.filter.unicodeScalars.reversed().first(where: { $0 != ";" }),
        Self.typographicQuotes.contains(first), Self.typographicQuotes.contains(last)
      {
        // Pasted from a web page or a word processor: read as a filter, the quotes are part of
        // the topic, and the rule matched nothing, silently. (A `;` after it is read with it.)
        var scalars = from.filter.unicodeScalars.dropFirst()
        while scalars.last == ";" { scalars.removeLast() }
        let inner = String(String.UnicodeScalarView(scalars.dropLast()))
        error(
          "\(first) and \(last) are typographic quotes, not SQL's: write the topic filter in single quotes, "
            + "FROM '\(inner.replacingOccurrences(of: "'", with: "''"))'",
          at: from.range)
      } else if !from.isQuoted || from.isDoubleQuoted {
        warning(
          "write the topic filter in single quotes, FROM '\(from.filter.replacingOccurrences(of: "'", with: "''"))', "
            + "as AWS requires", at: from.range)
      }
      do {
        _ = try TopicFilter(from.filter)
        if BasicIngest.isIngestFilter(from.filter) {
          // AWS takes such a rule (rules deployed for Basic Ingest or other services' direct
          // invocation write it so) though no rule is subscribed to these topics.
          warning(
            "rules are not subscribed to Basic Ingest topics: this rule runs as one without FROM, on the "
              + "messages published to '$aws/rules/<its name>/<topic>' only",
            at: from.range)
        }
        if from.filter.utf8.starts(with: "$share/".utf8) || from.filter == "$share" {
          self.error(
            "'$share/GROUP/filter' is an MQTT shared subscription, not a topic filter: messages are never "
              + "published to such a topic, so the rule would match nothing (to split a stream among "
              + "daemons, run each with --shared-group GROUP)",
            at: from.range)
        }
      } catch {
        // At the character the error names (its offset counts the filter's Unicode scalars); at the
        // literal when escapes make its text differ from the filter's.
        var location = from.range.start
        if !from.isEscaped {
          let before = String(from.filter.unicodeScalars.prefix(error.offset))
          let quote = from.isQuoted ? 1 : 0
          location.offset += quote + before.utf8.count
          location.column += quote + before.unicodeScalars.count
        }
        self.error("invalid topic filter '\(from.filter)': \(error.message)", at: SourceRange(at: location))
      }
    }
    if let condition = statement.whereClause {
      if case .literal(let value) = condition.kind, !Operators.isTrue(value), !Self.isBoolean(value) {
        // `WHERE 1`, `WHERE 'yes'`: only true lets a message through (`WHERE false` is meant).
        warning(
          "this WHERE is never true, so the rule never runs its actions: only true (or the string 'true') "
            + "lets a message through",
          at: condition.range)
      }
      check(condition)
      // `SELECT temp * 1.8 + 32 AS f ... WHERE f > 80`: the WHERE runs first, on the message, which
      // has no `f` (as in AWS): the rule never fires, and `check` said nothing.
      let computed = statement.select.namesComputedFromOthers
      var said: Set<String> = []
      for (name, range) in condition.fieldsRead where computed.contains(name) && said.insert(name).inserted {
        warning(
          "the WHERE reads the incoming message's '\(name)', not the SELECT's '\(name)' (the WHERE is evaluated "
            + "first, on the message, as in AWS): repeat the expression, or set it in a variable "
            + "(SET @\(name) = ..., then WHERE @\(name) ... and SELECT @\(name) AS \(name))",
          at: range)
      }
    }
    check(statement.select)
  }

  mutating func check(_ select: SelectClause) {
    switch select {
    case .value(let expression): check(expression)
    case .items(let items):
      // Two items under one key: the later one's value is the one written (`SELECT a.temp,
      // b.temp` writes b's alone, both being named `temp`).
      var keys: [[String]: SelectItem] = [:]
      // Each proper prefix of an earlier dotted key (`x` of `x.y`), with the first key under it: a
      // lookup, where filtering every earlier key took seconds for a generated list of 10,000 items.
      var under: [[String]: (key: [String], item: SelectItem)] = [:]
      for (position, item) in items.enumerated() {
        guard case .expression(let expression) = item.kind else { continue }
        check(expression)
        let key = item.alias ?? [CodeGenerator.defaultName(for: expression, position: position)]
        if let earlier = keys[key] {
          warning(
            "key '\(key.joined(separator: "."))' appears twice in this SELECT (first at "
              + "\(earlier.range.start)); the last value wins: name one with AS",
            at: item.range, related: earlier.range.start)
        } else if let (other, earlier) = under[key] {
          // `a AS x.y, b AS x` replaces x, and x.y with it. (`b AS x, a AS x.y` adds y to x when
          // b is an object, a way to extend one: not said.)
          warning(
            "key '\(key.joined(separator: "."))' replaces key '\(other.joined(separator: "."))' (set at "
              + "\(earlier.range.start)) in this SELECT: the earlier value is lost; name one with AS",
            at: item.range, related: earlier.range.start)
        } else if let (prefix, earlier) = (1..<max(key.count, 1)).lazy.compactMap({ length in
          keys[Array(key[..<length])].map { (key[..<length], $0) }
        }).last, case .expression(let value) = earlier.kind, value.isNonObjectLiteral {
          // `1 AS x, a AS x.y`: x is no object, so x.y replaces it (an object would take y).
          warning(
            "key '\(key.joined(separator: "."))' replaces key '\(prefix.joined(separator: "."))' (set at "
              + "\(earlier.range.start)) in this SELECT: that value is no object to add '\(key.last!)' to, so it is lost; "
              + "name one with AS",
            at: item.range, related: earlier.range.start)
        }
        keys[key] = item
        for length in 1..<max(key.count, 1) {
          let prefix = Array(key[..<length])
          // The key's latest item, as the one its value comes from.
          if under[prefix].map({ $0.key == key }) ?? true { under[prefix] = (key, item) }
        }
      }
    }
  }

  mutating func check(_ expression: Expression) {
    switch expression.kind {
    case .literal, .field, .wildcard: break
    case .variable(let name):
      if !variables.contains(name) {
        error("unknown variable '@\(name)'; assign it in the SET clause before use", at: expression.range)
      }
    case .member(let base, _): check(base)
    case .unary(_, let operand): check(operand)
    case .binary(.in, let left, let right) where right.isScalarLiteral:
      // `a IN (1)` is `a IN 1`: Undefined whatever a is, so never true.
      warning("IN needs an array on its right, which this is not: write a IN [...]", at: right.range)
      check(left)
    case .binary(let op, let left, let right):
      // `my-key` is `my - key`: a key with a hyphen is read with get() (AWS's JSON extensions).
      if op == .subtract, case .field(let first) = left.kind, case .field(let second) = right.kind,
        left.range.end.offset + 1 == right.range.start.offset
      {
        warning(
          "'\(first)-\(second)' reads as \(first) - \(second); for a key with a hyphen write get(*, '\(first)-\(second)')",
          at: expression.range)
      }
      // `b > 'a'`: an ordering compares numbers, a string only as the number it spells (AWS's
      // tables: any other value gives Undefined), so a string constant that is none is never true.
      if [.less, .lessOrEqual, .greater, .greaterOrEqual].contains(op) {
        for side in [left, right] {
          if case .literal(.string(let text)) = side.kind, !Coercions.isNumeric(text) {
            warning(
              "'\(op.rawValue)' compares numbers (a string as the number it spells): '\(text)' is no number, so "
                + "this is always Undefined, never true; compare strings with = or <>, or with functions "
                + "(startswith, regexp_matches)", at: side.range)
          }
        }
      }
      check(left)
      check(right)
    case .call(let name, let arguments):
      checkCall(name: name, arguments: arguments, range: expression.range)
      for argument in arguments { check(argument) }
    case .cast(let operand, let type, let typeRange):
      check(operand)
      if CastType(name: type, version: version) == nil {
        if CastType(name: type, version: .v2016_03_23) != nil {
          error("cast to '\(type)' needs SQL version 2016-03-23", at: typeRange)
        } else {
          error(
            "unknown cast type '\(type)'; expected String, Int, Decimal, Double or Boolean", at: typeRange)
        }
      }
    case .caseWhen(let subject, let branches, let otherwise):
      if let subject { check(subject) }
      for branch in branches {
        check(branch.when)
        check(branch.then)
      }
      if let otherwise { check(otherwise) }
    case .object(let members):
      requireV2("object literals", at: expression.range)
      var keys: Set<MemberName> = []
      for member in members {
        if !keys.insert(MemberName(member.key)).inserted {
          warning(
            "key '\(member.key)' appears twice in this object; the last value wins", at: expression.range)
        }
        check(member.value)
      }
    case .array(let elements):
      requireV2("array literals", at: expression.range)
      for element in elements { check(element) }
    case .nested(let query):
      requireV2("nested queries", at: expression.range)
      if case .literal(.string(let text)) = query.from.kind {
        // The top-level FROM's quotes, copied: the source is then that string, never an array.
        warning(
          "a nested query reads from a field of the message, not a topic: FROM '\(text)' is the string "
            + "'\(text)', so the query gives Undefined; write FROM \(Self.fieldPath(text))",
          at: query.from.range)
      }
      check(query.from)
      if let condition = query.whereClause { check(condition) }
      check(query.select)
    }
  }

  /// The field path a nested query's quoted FROM text meant: its names joined by dots when each
  /// is a plain name (`x/y` and `x.y` are `x.y`: unquoted, `x/y` divides), else `get(*, 'text')`
  /// (`my-list` unquoted subtracts).
  static func fieldPath(_ text: String) -> String {
    let names = text.split(separator: "/", omittingEmptySubsequences: false).flatMap {
      $0.split(separator: ".", omittingEmptySubsequences: false)
    }
    // As the lexer reads a name: a letter or `_`, then letters, digits and `_`; no keyword.
    let plain = names.allSatisfy { name in
      guard let first = name.utf8.first, !Lexer.isDigit(first), name.utf8.allSatisfy(Lexer.isWordByte) else {
        return false
      }
      return Keyword(rawValue: name.uppercased()) == nil
    }
    return plain ? names.joined(separator: ".") : "get(*, '\(text.replacingExactly("'", with: "''"))')"
  }

  private mutating func requireV2(_ what: String, at range: SourceRange) {
    if version < .v2016_03_23 { error("\(what) need SQL version 2016-03-23", at: range) }
  }

  /// Whether `value` is a Boolean.
  /// ‘ ’ “ ” and their low and reversed forms.
  static let typographicQuotes: Set<Unicode.Scalar> = [
    "\u{2018}", "\u{2019}", "\u{201A}", "\u{201B}", "\u{201C}", "\u{201D}", "\u{201E}", "\u{201F}",
  ]

  private static func isBoolean(_ value: Value) -> Bool {
    if case .bool = value { return true }
    return false
  }

  /// Whether `expression` is a string literal.
  private static func isStringLiteral(_ expression: Expression) -> Bool {
    if case .literal(.string) = expression.kind { return true }
    return false
  }

  private mutating func checkCall(name: String, arguments: [Expression], range: SourceRange) {
    let isGetSecret = name.lowercased() == "get_secret"
    // A secret's name from the message would let a device choose which secret is sent.
    if isGetSecret, let id = arguments.first, !Self.isStringLiteral(id) {
      error(
        "get_secret's secret name must be a constant string ('api-token'): a value from the message would choose which secret is sent",
        at: id.range)
    }
    if isGetSecret, inStatement {
      // As in AWS, secrets are read where a header is sent, not into results: silently Undefined
      // here would look like a missing secret.
      warning(
        "get_secret() is Undefined in a rule's SQL: secrets are read in the templates of an http, kafka or republish action's settings",
        at: range)
    }
    let nameRange = SourceRange(
      start: range.start,
      end: SourceLocation(
        offset: range.start.offset + name.utf8.count, line: range.start.line,
        column: range.start.column + name.count))
    guard let spec = FunctionRegistry.lookup(name) else {
      if name.lowercased() == "cast" {
        error("cast needs the form cast(value AS type)", at: nameRange)
      } else if ["count", "sum", "avg", "min", "max", "distinct"].contains(name.lowercased()) {
        error(
          "unknown function '\(name)': IoT SQL has no aggregate functions, a rule sees one message at a time (an array's elements: a nested query, `(SELECT VALUE ... FROM array)`)",
          at: nameRange)
      } else if let suggestion = FunctionRegistry.suggestion(for: name) {
        error("unknown function '\(name)'; did you mean '\(suggestion)'?", at: nameRange)
      } else {
        error("unknown function '\(name)'", at: nameRange)
      }
      return
    }
    if let reason = spec.unavailableReason {
      error(reason, at: nameRange)
      return
    }
    if spec.minimumVersion > version {
      error("function '\(spec.name)' needs SQL version \(spec.minimumVersion.rawValue)", at: nameRange)
    }
    if !spec.arity.contains(arguments.count) {
      // AWS runs the rule and the call gives Undefined ("wrong number of arguments" on the data-types
      // page); the warning keeps the mistake visible.
      warning(
        "function '\(spec.name)' takes \(Self.describe(spec.documentedArity ?? spec.arity)) but \(arguments.count) "
          + (arguments.count == 1 ? "was" : "were") + " given; the call is always Undefined", at: nameRange)
    }
  }

  static func describe(_ arity: ClosedRange<Int>) -> String {
    func count(_ n: Int) -> String { n == 1 ? "1 argument" : "\(n) arguments" }
    if arity.lowerBound == arity.upperBound { return count(arity.lowerBound) }
    if arity.upperBound == Int.max { return "at least \(count(arity.lowerBound))" }
    return "\(arity.lowerBound) to \(count(arity.upperBound))"
  }
}
