import Foundation

/// The recursive-descent parser of Grammar/IoTSQL.ebnf.
///
/// Each parse function's doc comment starts with the production it implements. The parser reads one
/// token ahead, stops at the first syntax error and reports it as a `Diagnostic(stage: .parse)` at the
/// offending token. Nesting (parentheses, brackets, braces, calls, CASE, nested queries, prefix
/// operators) deeper than `maximumDepth` is an error, never a stack overflow.
public struct Parser {
  /// The deepest nesting accepted.
  public static let maximumDepth = 256
  /// The most binary operators on one path of an expression tree (a chain `a OR b OR ...`, with the
  /// chains it sits in).
  public static let maximumChain = 512

  private var lexer: Lexer
  /// The next token, read on demand.
  private var lookahead: Token?
  /// The last token consumed (for "after ','" in messages and for ranges).
  private var previous: Token?
  /// What the text before the first token is called in messages (`'${'` for templates).
  private var openingDescription: String?
  /// The current nesting depth.
  private var depth = 0
  /// Binary operators on the path being parsed (see `maximumChain`).
  private var chain = 0
  /// Warnings so far.
  private var warnings: [Diagnostic] = []
  /// Set by a SELECT item for the path it starts with, which may end with `.*`.
  private var membersMayFollow = false

  private init(_ lexer: Lexer, openingDescription: String? = nil) {
    self.lexer = lexer
    self.openingDescription = openingDescription
  }

  // MARK: - Entry points

  /// Parses one statement; every syntax error carries line:column and points at the offending token.
  public static func parse(_ source: String) throws(SQLError) -> Statement {
    var parser = Parser(Lexer(source))
    return try parser.parseStatement()
  }

  /// Parses a text that holds one expression alone.
  public static func parseExpression(_ source: String) throws(SQLError) -> Expression {
    var parser = Parser(Lexer(source))
    let expression = try parser.parseExpression()
    let token = try parser.peek()
    guard token.kind == .end else {
      throw parser.error("expected the end of the expression, found \(parser.describe(token))", token.range)
    }
    return expression
  }

  /// Parses one expression that starts at byte `offset` of `text` (just after a `${`) and must be
  /// followed by `}`; returns it with the byte offset just past that `}`. Positions, in the result and
  /// in diagnostics, are relative to the whole `text`.
  public static func parseTemplateExpression(
    in text: String, from offset: Int
  ) throws(SQLError) -> (expression: Expression, end: Int) {
    let lexer = Lexer(text, from: offset)
    guard lexer.offset == offset else {
      throw Parser(lexer, openingDescription: "'${'").error(
        "template expression offset \(offset) is not the start of a character of the text",
        SourceRange(at: lexer.location))
    }
    return try parseTemplateExpression(startingAt: lexer)
  }

  /// ``parseTemplateExpression(in:from:)`` with a lexer already where the expression starts (a
  /// template walks its text once for all its parts).
  static func parseTemplateExpression(startingAt lexer: Lexer) throws(SQLError) -> (
    expression: Expression, end: Int
  ) {
    let offset = lexer.offset
    var parser = Parser(lexer, openingDescription: "'${'")
    let expression = try parser.parseExpression()
    let token = try parser.peek()
    guard token.kind == .symbol("}") else {
      if token.kind == .end, offset >= 2 {
        // Said at the `${` that is never closed: the end of the text is no place to look for it.
        let opening = Lexer(lexer.source, from: offset - 2).location
        throw parser.error(
          "this '${' is never closed: expected '}' after its expression",
          SourceRange(start: opening, end: lexer.location))
      }
      throw parser.error(
        "expected '}' to close the template expression, found \(parser.describe(token))", token.range)
    }
    _ = try parser.advance()
    return (expression, token.range.end.offset)
  }

  // MARK: - Statement

  /// `statement = [ set_clause ] select_clause [ from_clause ] [ where_clause ] ;`
  private mutating func parseStatement() throws(SQLError) -> Statement {
    let first = try peek()
    var variables: [VariableAssignment] = []
    if first.kind == .keyword(.set) {
      variables = try parseSetClause()
      let token = try peek()
      if token.kind == .keyword(.set) {
        throw error("SET may appear only once, before SELECT", token.range)
      }
      guard token.kind == .keyword(.select) else {
        throw error("expected ',' or SELECT after a SET assignment, found \(describe(token))", token.range)
      }
    } else if first.kind != .keyword(.select) {
      throw error("expected SELECT or SET, found \(describe(first))", first.range)
    }
    _ = try advance()
    let select = try parseSelectList()

    var from: TopicFilterSource?
    var whereClause: Expression?
    var token = try peek()
    if token.kind == .keyword(.from) {
      from = try parseFromClause()
      token = try peek()
    }
    if token.kind == .keyword(.where) {
      _ = try advance()
      whereClause = try parseExpression()
      token = try peek()
    }
    if token.kind != .end {
      if token.kind == .keyword(.set) { throw error("SET must come before SELECT", token.range) }
      let expected =
        whereClause != nil
        ? "the end of the statement"
        : from != nil ? "WHERE or the end of the statement" : "FROM, WHERE or the end of the statement"
      throw error(
        "expected \(expected), found \(describe(token))\(hint(for: token, from: from != nil, where: whereClause != nil))",
        token.range)
    }
    let end = previous?.range.end ?? first.range.start
    var statement = Statement(
      variables: variables, select: select, from: from, whereClause: whereClause,
      range: SourceRange(start: first.range.start, end: end))
    statement.warnings = warnings
    return statement
  }

  /// What a user of another SQL may have meant by a word where a clause ends: a clause IoT SQL
  /// lacks, or a misspelt FROM or WHERE.
  private func hint(for token: Token, from hasFrom: Bool, where hasWhere: Bool) -> String {
    // `SELECT 'abc FROM 't'`: the string ran on to the filter's opening quote.
    if !hasFrom, case .string(let text)? = previous?.kind,
      text.split(separator: " ").contains(where: { ["FROM", "WHERE"].contains($0.uppercased()) })
    {
      return " (the string before it, '\(text)', may be missing its closing quote)"
    }
    if token.kind == .keyword(.not) { return " (NOT goes before what it negates: NOT (a IN b))" }
    // `SELECT * * 2`: an item that starts with `*` is `*` alone (the whole payload, merged).
    if !hasFrom, previous?.kind == .symbol("*"), case .symbol(let symbol) = token.kind,
      BinaryOperator(token.kind) != nil
    {
      return
        " (a SELECT item that starts with '*' is '*' alone, the payload's members: write (* \(symbol) ...) AS name for an operation on the payload)"
    }
    if token.kind == .symbol(","), hasFrom, !hasWhere {
      return " (a rule reads one topic filter: match several topics with a wildcard, '+' or '#')"
    }
    guard case .identifier(let name) = token.kind else { return "" }
    let upper = name.uppercased()
    if ["GROUP", "ORDER", "LIMIT", "HAVING", "JOIN", "UNION", "OFFSET", "WINDOW"].contains(upper) {
      return
        " (IoT SQL has no \(upper == "GROUP" || upper == "ORDER" ? upper + " BY" : upper): a rule sees one message at a time)"
    }
    // Operators of other SQLs, with what IoT SQL writes instead.
    switch upper {
    case "LIKE", "ILIKE", "RLIKE", "REGEXP", "SIMILAR":
      return
        " (IoT SQL has no \(upper): use regexp_matches(a, '^pattern$'), startswith(a, 'x') or endswith(a, 'x'))"
    case "BETWEEN": return " (IoT SQL has no BETWEEN: write a >= low AND a <= high)"
    case "IS": return " (IoT SQL has no IS NULL: use isNull(a), isUndefined(a), or NOT isNull(a))"
    case "XOR": return " (IoT SQL has no XOR: bitxor(a, b) for integers, or (a OR b) AND NOT (a AND b))"
    default: break
    }
    for keyword in hasWhere ? [] : hasFrom ? ["WHERE"] : ["FROM", "WHERE"]
    where FunctionRegistry.editDistance(upper, keyword) <= 2 && upper.count >= 3 {
      return "; did you mean \(keyword)?"
    }
    return ""
  }

  /// `set_clause = "SET" assignment { "," assignment } ;`
  /// `assignment = variable "=" expression ;`
  private mutating func parseSetClause() throws(SQLError) -> [VariableAssignment] {
    _ = try advance()
    var assignments: [VariableAssignment] = []
    repeat {
      let name = try peek()
      guard case .variable(let variable) = name.kind else {
        let after = assignments.isEmpty ? "SET" : "','"
        throw error("expected a variable '@name' after \(after), found \(describe(name))", name.range)
      }
      _ = try advance()
      let equals = try peek()
      guard equals.kind == .symbol("=") else {
        throw error("expected '=' after '@\(variable)', found \(describe(equals))", equals.range)
      }
      _ = try advance()
      let value = try parseExpression()
      assignments.append(
        VariableAssignment(name: variable, value: value, range: name.range.union(value.range)))
    } while try consume(.symbol(","))
    return assignments
  }

  /// `from_clause = "FROM" ( string | raw_filter ) ;`
  private mutating func parseFromClause() throws(SQLError) -> TopicFilterSource {
    _ = try advance()
    // An unquoted filter is raw text, not tokens, so look at the bytes before lexing.
    lexer.skipWhitespace()
    let offset = lexer.offset
    if offset < lexer.bytes.count,
      lexer.bytes[offset] == UInt8(ascii: "'") || lexer.bytes[offset] == UInt8(ascii: "\"")
    {
      let token = try advance()
      guard case .string(let filter) = token.kind else { throw error("expected a topic filter", token.range) }
      return TopicFilterSource(
        filter: filter, range: token.range, isQuoted: true,
        isEscaped: token.range.end.offset - token.range.start.offset != filter.utf8.count + 2,
        isDoubleQuoted: lexer.bytes[offset] == UInt8(ascii: "\""))
    }
    var probe = lexer
    let raw = probe.scanRawFilter()
    if raw.text.isEmpty {
      throw error("expected a topic filter after FROM, found the end of the statement", raw.range)
    }
    // The bare word, not a filter that begins with it (`where/x`, `from/#` are filters).
    var wordLexer = lexer
    if let next = try? wordLexer.next(), case .keyword(let keyword) = next.kind,
      keyword == .where || keyword == .select || keyword == .from,
      next.range.end.offset == raw.range.end.offset
    {
      throw error("expected a topic filter after FROM, found \(keyword.rawValue)", next.range)
    }
    // `FROM a/b'`: the opening quote lost (a quote inside, `it's/x`, is a topic's character).
    if let last = raw.text.last, last == "'" || last == "\"" {
      let bare = String(raw.text.dropLast()).replacingOccurrences(of: "'", with: "''")
      throw error(
        "the topic filter \(raw.text) ends with a quote but does not start with one: write it in single quotes, "
          + "FROM '\(bare)'", raw.range)
    }
    // `FROM t/1;` and `FROM t/1,t/2` (EMQX lists filters): read as the filter 't/1;', which no topic
    // was meant to match. (Between typographic quotes, the checker says what to write.)
    if let first = raw.text.unicodeScalars.first, !Checker.typographicQuotes.contains(first),
      let index = raw.text.utf8.firstIndex(where: { $0 == UInt8(ascii: ";") || $0 == UInt8(ascii: ",") })
    {
      let bytes = raw.text.utf8.distance(from: raw.text.utf8.startIndex, to: index)
      let start = SourceLocation(
        offset: raw.range.start.offset + bytes, line: raw.range.start.line,
        column: raw.range.start.column + raw.text[..<index].count)
      let place = SourceRange(
        start: start,
        end: SourceLocation(offset: start.offset + 1, line: start.line, column: start.column + 1))
      throw error(
        raw.text.utf8[index] == UInt8(ascii: ";")
          ? "unexpected character ';' (a rule is one statement: remove the ';' and anything after it)"
          : "unexpected character ',' in the topic filter (a rule reads one topic filter: match several topics "
            + "with a wildcard, '+' or '#')", place)
    }
    lexer = probe
    previous = Token(.string(raw.text), raw.range)
    return TopicFilterSource(filter: raw.text, range: raw.range, isQuoted: false)
  }

  /// `select_list = "VALUE" expression | select_item { "," select_item } ;`
  ///
  /// `VALUE` is the keyword only when what follows can start an expression: `SELECT value, x` and
  /// `SELECT value.doubleValue AS v` read a field named `value`, as AWS's own examples do.
  private mutating func parseSelectList() throws(SQLError) -> SelectClause {
    if try isKeyword(.value), try valueStartsSelectValue(), try consume(.keyword(.value)) {
      let previousValue = previous!
      let token = try peek()
      let value = try parseExpression()
      // `SELECT VALUE x AS y` or `SELECT VALUE x, y`: said as such, not as a FROM expected (or, for
      // `*`, as a multiplication of a field named `value` missing its operand).
      let next = try peek()
      if next.kind == .keyword(.as) || next.kind == .symbol(",") {
        // `SELECT value - 1 AS v` meant a field (written in lower case); `SELECT VALUE -x AS y`
        // the keyword.
        let spelled = lexer.text(previousValue.range)
        let field =
          token.kind == .symbol("-") && spelled != "VALUE"
          ? "; 'value -' starts SELECT VALUE: for a field named value, write (value - ...)"
          : token.kind == .symbol("*") && spelled == "VALUE" && previous!.range != token.range
            ? "; 'VALUE *' starts SELECT VALUE: for a field named VALUE, write (VALUE * ...)" : ""
        throw error(
          "SELECT VALUE takes one expression, with no alias and no other item\(field)", next.range)
      }
      return .value(value)
    }
    try refuseDistinct()
    var items: [SelectItem] = []
    repeat {
      items.append(try parseSelectItem())
    } while try consume(.symbol(","))
    return .items(items)
  }

  /// True when a `,` is read and an item follows it. A `,` that one of `ends` follows ends the list,
  /// with a warning: AWS takes such a comma in an object literal (`{'a': 1,}` in the SQL AWS's IoT
  /// toolbox sample builds and runs on AWS); an array is read alike. (A SELECT list's is an error, as
  /// the SELECT page's grammar has it, though AWS's DynamoDB tutorial shows one.)
  private mutating func listGoesOn(before ends: Token.Kind..., in list: String) throws(SQLError) -> Bool {
    guard try consume(.symbol(",")) else { return false }
    guard let comma = previous, ends.contains(try peek().kind) else { return true }
    warnings.append(
      Diagnostic(.warning, stage: .parse, "a ',' ends \(list) here: nothing follows it", at: comma.range))
    return false
  }

  /// `SELECT DISTINCT a` (a word the SQL of other databases has) is said as such, at `DISTINCT`,
  /// rather than as a FROM expected at `a`. `SELECT distinct, a` and `SELECT distinct AS d` still
  /// read a field named `distinct`.
  private mutating func refuseDistinct() throws(SQLError) {
    let token = try peek()
    guard case .identifier(let word) = token.kind, word.lowercased() == "distinct" else { return }
    var probe = self
    _ = try probe.advance()
    let refused: Bool
    switch try probe.peek().kind {
    case .identifier, .variable, .integer, .decimal, .string, .symbol("("): refused = true
    case .symbol("*"):
      // `SELECT DISTINCT * FROM ...`, but `SELECT distinct * 2 AS d`.
      _ = try probe.advance()
      let after = try probe.peek().kind
      refused =
        after == .end || after == .keyword(.from) || after == .keyword(.where) || after == .symbol(",")
    default: refused = false
    }
    if refused {
      throw error(
        "SELECT DISTINCT is not part of AWS IoT SQL: a rule gives one result a message", token.range)
    }
  }

  /// With `VALUE` next: true when the token after it can start an expression (or is `*`), so that
  /// `VALUE` is the keyword; false when it is an operator, `.`, `,`, `AS` or `FROM` (a field).
  ///
  /// `VALUE * - 1` reads either way; spelled in capitals, as the keyword is in AWS's guide, it is
  /// the keyword over the message (or element) minus 1, else a field named `value` times -1.
  private mutating func valueStartsSelectValue() throws(SQLError) -> Bool {
    var probe = self
    let word = try probe.advance()
    switch try probe.peek().kind {
    case .symbol("*"):
      // `SELECT VALUE * FROM ...`, but `SELECT value * 2 AS d`; `SELECT VALUE * AS x` and
      // `SELECT VALUE *, a` multiply nothing: the keyword, refused with its own message.
      // `SELECT VALUE *.messages` too (not `SELECT value*.5`, a malformed number).
      _ = try probe.advance()
      let after = try probe.peek().kind
      if BinaryOperator(after) != nil {
        return lexer.text(word.range) == "VALUE"
      }
      if after == .symbol(".") {
        _ = try probe.advance()
        switch try probe.peek().kind {
        case .identifier, .keyword: return true
        default: return false
        }
      }
      return after == .end || after == .keyword(.from) || after == .keyword(.where) || after == .keyword(.as)
        || after == .symbol(",")
    case .symbol(let symbol): return ["(", "[", "{", "-"].contains(symbol)
    case .keyword(let keyword):
      return [.true, .false, .null, .case, .not, .value].contains(keyword)
    case .end: return false
    default: return true
    }
  }

  /// True when the token after the next one is `symbol`.
  private mutating func nextIsSymbol(_ symbol: String) throws(SQLError) -> Bool {
    var probe = self
    _ = try probe.advance()
    return try probe.peek().kind == .symbol(symbol)
  }

  /// `select_item = ( "*" | expression [ "." "*" ] ) [ "AS" alias ] ;`
  private mutating func parseSelectItem() throws(SQLError) -> SelectItem {
    let start = try peek()
    let kind: SelectItem.Kind
    // `*` alone merges the message's members; `*.messages` is an expression.
    if start.kind == .symbol("*"), try !nextIsSymbol(".") {
      _ = try advance()
      kind = .star
    } else {
      membersMayFollow = true
      let expression = try parseExpression()
      membersMayFollow = false
      // `state.reported.*`: that object's members, as `*` takes the payload's. (Not of an operation
      // or a scalar or array literal: `-a.*`, `'x'.*` would give nothing; `{'k': a}.*` gives k.)
      if try isSymbol("."), try nextIsSymbol("*") {
        switch expression.kind {
        case .unary, .binary, .literal, .array:
          throw error(
            "'.*' takes the members of an object (state.reported.*), not of an operation, a scalar or an array",
            try peek().range)
        default: break
        }
        _ = try advance()
        _ = try advance()
        kind = .members(expression)
      } else {
        kind = .expression(expression)
      }
    }
    var alias: [String]?
    if try consume(.keyword(.as)) {
      alias = try parseAlias()
    }
    return SelectItem(kind: kind, alias: alias, range: start.range.union(previous?.range ?? start.range))
  }

  /// `alias = alias_name { "." member_name } ;`
  /// `alias_name = name | keyword - ( "FROM" | "WHERE" ) ;`
  private mutating func parseAlias() throws(SQLError) -> [String] {
    let first = try peek()
    var parts: [String] = []
    switch first.kind {
    case .identifier(let name): parts.append(name)
    case .keyword(let keyword) where keyword != .from && keyword != .where:
      parts.append(lexer.text(first.range))
    default: throw error("expected an alias name after AS, found \(describe(first))", first.range)
    }
    _ = try advance()
    while try consume(.symbol(".")) {
      // `AS b. FROM 't'`: the dangling '.' took FROM as a member name (`b.FROM`), and the error
      // came at the topic (`AS b. WHERE FROM 't'` ran with an alias `b.WHERE`). A member named
      // `from` or `where` follows its '.' directly, and FROM a topic never ends an alias.
      let after = try peek()
      if after.kind == .keyword(.from) || after.kind == .keyword(.where) {
        var probe = self
        _ = try probe.advance()
        let spaced = after.range.start.offset > previous!.range.end.offset
        var topicFollows = false
        if after.kind == .keyword(.from), case .string = try probe.peek().kind { topicFollows = true }
        if spaced || topicFollows {
          throw error(
            "expected a member name after '.' in the alias, found \(describe(after)) (the alias ends with '.')",
            previous!.range)
        }
      }
      if parts.count == Parser.maximumDepth {
        throw error(
          "alias too deep (more than \(Parser.maximumDepth) names): the result's nesting is limited",
          previous!.range)
      }
      parts.append(try parseMemberName())
    }
    return parts
  }

  /// `member_name = name | keyword ;`
  ///
  /// After `.`, any keyword is a plain name: `a.value`.
  private mutating func parseMemberName() throws(SQLError) -> String {
    let token = try peek()
    switch token.kind {
    case .identifier(let name):
      _ = try advance()
      return name
    case .keyword:
      _ = try advance()
      return lexer.text(token.range)
    case .integer, .decimal:
      throw error(
        "expected a member name after '.', found \(describe(token)) (use get() for keys that are not names)",
        token.range)
    default:
      throw error("expected a member name after '.', found \(describe(token))", token.range)
    }
  }

  // MARK: - Expressions
  //
  // The functions on the recursive path keep their frames small (debug builds give every temporary
  // its own stack slot): messages, literals and node construction live in helpers that return before
  // the recursion goes deeper, so `maximumDepth` levels fit comfortably in a thread's stack.

  /// `expression = or_expr ;`
  mutating func parseExpression() throws(SQLError) -> Expression {
    try parseBinary(.or)
  }

  /// `or_expr = and_expr { "OR" and_expr } ;`
  /// `and_expr = not_expr { "AND" not_expr } ;`
  /// `not_expr = "NOT" not_expr | comparison ;`
  /// `comparison = additive [ comparison_op additive ] ;`
  /// `additive = multiplicative { ( "+" | "-" ) multiplicative } ;`
  /// `multiplicative = unary { ( "*" | "/" | "%" ) unary } ;`
  ///
  /// The layers are climbed with the table of Precedence.swift: `minimum` is the loosest level this
  /// call may consume; a comparison is followed by another only through parentheses.
  ///
  /// Each operator of a chain (`a OR b OR ...`) deepens the tree by one, and the checker and the
  /// compiler walk it recursively: past `maximumChain` operators on one path the statement is an
  /// error, where 2,000 terms overflowed the stack of every command and of a running daemon.
  private mutating func parseBinary(_ minimum: Precedence) throws(SQLError) -> Expression {
    var left = try isNot(allowed: minimum <= .not) ? try parseNot() : try parseUnary()
    let chainStart = chain
    defer { chain = chainStart }
    while let op = try nextOperator(atLeast: minimum) {
      chain += 1
      if chain > Parser.maximumChain {
        throw error(
          "too many operators in one expression (more than \(Parser.maximumChain) on one path); split it, with SET variables say",
          try peek().range)
      }
      let right = try parseBinary(op.precedence.tighter)
      left = Parser.binary(op, left, right)
      try checkNotChained(op)
    }
    return left
  }

  /// `not_expr = "NOT" not_expr | comparison ;` (the NOT alternative; the token is NOT)
  private mutating func parseNot() throws(SQLError) -> Expression {
    let token = try enterWith()
    let operand = try parseBinary(.not)
    depth -= 1
    return Parser.unary(.not, token, operand)
  }

  /// `unary = "-" unary | postfix ;`
  private mutating func parseUnary() throws(SQLError) -> Expression {
    guard try isSymbol("-") else { return try parsePostfix() }
    let token = try enterWith()
    let operand = try parseUnary()
    depth -= 1
    return Parser.unary(.negate, token, operand)
  }

  /// `postfix = primary { "." member_name } ;`
  ///
  /// Each member deepens the tree by one, as an operator does: they count toward `maximumChain`
  /// (a path of 1,900 members overflowed the checker's stack).
  private mutating func parsePostfix() throws(SQLError) -> Expression {
    // Only the path a SELECT item starts with may end with `.*` (the item takes it).
    let membersMayEnd = membersMayFollow
    membersMayFollow = false
    var expression = try parsePrimary()
    let chainStart = chain
    defer { chain = chainStart }
    while try isSymbol(".") {
      if try nextIsSymbol("*") {
        guard membersMayEnd else {
          throw error(
            "'.*' takes an object's members only as a whole SELECT item (SELECT state.reported.*, ...)",
            try peek().range)
        }
        break
      }
      _ = try advance()
      chain += 1
      if chain > Parser.maximumChain {
        throw error(
          "path too long (more than \(Parser.maximumChain) members and operators on one path of the expression)",
          previous!.range)
      }
      expression = try parseMember(of: expression)
    }
    return expression
  }

  /// `primary = literal | "*" | array | object | variable | case_expr | cast | exists | call | name | "VALUE" | parenthesized ;`
  private mutating func parsePrimary() throws(SQLError) -> Expression {
    let form = try primaryForm()
    if case .atom(let expression) = form { return expression }
    let token = try enterWith()
    defer { depth -= 1 }
    switch form {
    case .atom(let expression): return expression
    case .parenthesized: return try parseParenthesized(token)
    case .array: return try parseArray(token)
    case .object: return try parseObject(token)
    case .caseExpression: return try parseCase(token)
    case .call(let name): return try parseCall(name)
    case .cast(let name): return try parseCast(name, open: token)
    case .exists(let name): return try parseExists(name, open: token)
    }
  }

  /// What a primary starts with; atoms (literals, names, variables) are already parsed, the other
  /// forms start at the current token (for calls and casts, the name was consumed and `(` is next,
  /// so the nesting level is entered at the `(`).
  private enum PrimaryForm {
    case atom(Expression)
    case parenthesized, array, object, caseExpression
    case call(Token), cast(Token), exists(Token)
  }

  /// `literal = integer | decimal | string | "TRUE" | "FALSE" | "NULL" ;` and the other atoms.
  private mutating func primaryForm() throws(SQLError) -> PrimaryForm {
    let token = try peek()
    let value: ExpressionKind
    switch token.kind {
    case .integer(let text):
      if let int = Int(text) {
        value = .literal(.int(int))
      } else {
        value = .literal(.decimal(try decimal(token)))
      }
    case .decimal: value = .literal(.decimal(try decimal(token)))
    case .string(let string): value = .literal(.string(string))
    case .keyword(.true): value = .literal(.bool(true))
    case .keyword(.false): value = .literal(.bool(false))
    case .keyword(.null): value = .literal(.null)
    case .variable(let name): value = .variable(name)
    // Outside `SELECT VALUE`, the word is a field name (`value.doubleValue`, `WHERE value > 0`).
    case .keyword(.value): value = .field(lexer.text(token.range))
    case .keyword(.case): return .caseExpression
    case .symbol("("): return .parenthesized
    case .symbol("["): return .array
    case .symbol("{"): return .object
    case .identifier(let name):
      _ = try advance()
      guard try isSymbol("(") else { return .atom(Expression(.field(name), token.range)) }
      switch name.lowercased() {
      case "cast": return .cast(token)
      case "exists": return .exists(token)
      default: return .call(token)
      }
    // The whole message (in a nested query, its element): `get(*, 'k')`, `*.messages`, `(*)`.
    case .symbol("*"): value = .wildcard
    default:
      // A field named as a keyword (`select`, `end`) is read with get(), as Grammar/README says.
      var hint = ""
      if case .keyword(let keyword) = token.kind,
        [.select, .value, .end, .set, .case, .when, .then, .else, .in].contains(keyword)
      {
        let word = lexer.text(token.range)
        hint = " (a field named '\(word)' is read with get(*, '\(word)'))"
      }
      // `.5`: a number starts with a digit (the lexer reads `.` and `5` apart, as in `a.5`).
      let after = token.range.end.offset
      if token.kind == .symbol("."), after < lexer.bytes.count, Lexer.isDigit(lexer.bytes[after]) {
        var end = after
        while end < lexer.bytes.count, Lexer.isDigit(lexer.bytes[end]) { end += 1 }
        let digits = String(decoding: lexer.bytes[after..<end], as: UTF8.self)
        throw error(
          "malformed number '.\(digits)': a number starts with a digit (write 0.\(digits))", token.range)
      }
      // `a == 1`: SQL's and IoT SQL's equality is one '='.
      if token.kind == .symbol("="), previous?.kind == .symbol("="),
        previous?.range.end.offset == token.range.start.offset
      {
        hint = " (IoT SQL compares with a single '=')"
      }
      // `+5`, `-(+a)`: a sign of plus is SQL's, not IoT SQL's.
      if token.kind == .symbol("+") {
        hint = " (IoT SQL has no unary '+': remove it)"
      }
      // `SELECT a, b, FROM 't'` (AWS's DynamoDB tutorial has one).
      if previous?.kind == .symbol(","), token.kind == .keyword(.from) || token.kind == .keyword(.where) {
        hint = " (a SELECT list does not end with ','; remove it)"
      }
      if previous != nil || openingDescription != nil {
        throw error("expected an expression after \(describePrevious())\(hint)", token.range)
      }
      throw error("expected an expression, found \(describe(token))\(hint)", token.range)
    }
    _ = try advance()
    return .atom(Expression(value, token.range))
  }

  /// `parenthesized = "(" expression ")" | "(" nested_query ")" ;`
  private mutating func parseParenthesized(_ open: Token) throws(SQLError) -> Expression {
    if try isKeyword(.select) {
      let query = try parseNestedQuery()
      return Parser.node(
        .nested(query), open, try expectClosing(")", opening: open, what: "the nested query"))
    }
    let inner = try parseExpression()
    // `(1, 2)` is no list in IoT SQL: said with the array that is (`a IN (1, 2)` is a habit of
    // other SQLs).
    let hint = try peek().kind == .symbol(",") ? "; a list is an array, [1, 2]" : ""
    return Parser.node(
      inner.kind, open, try expectClosing(")", opening: open, what: "the expression", hint: hint))
  }

  /// `nested_query = "SELECT" select_list "FROM" expression [ [ "AS" ] name ] [ "WHERE" expression ] ;`
  private mutating func parseNestedQuery() throws(SQLError) -> NestedQuery {
    _ = try advance()
    let select = try parseSelectList()
    try expect(.keyword(.from), "FROM in the nested query")
    var from = try parseExpression()
    // `FROM *`: the message as the one element of an array, as AWS runs it (`get((SELECT *,
    // topic() AS t FROM *), 0)` is the message with its topic).
    if from.kind == .wildcard { from = Expression(.array([from]), from.range) }
    var alias: String?
    if try consume(.keyword(.as)) {
      let token = try peek()
      guard case .identifier(let name) = token.kind else {
        throw error("expected a name for the element after AS, found \(describe(token))", token.range)
      }
      _ = try advance()
      alias = name
    } else if case .identifier(let name) = try peek().kind {
      // `FROM arr a`: a name right after the array names its element, as with AS (SQL's table
      // alias; nothing else may stand there).
      _ = try advance()
      alias = name
    }
    let whereClause = try consume(.keyword(.where)) ? try parseExpression() : nil
    return NestedQuery(select: select, from: from, alias: alias, whereClause: whereClause)
  }

  /// `exists = "EXISTS" "(" nested_query ")" ;`
  ///
  /// `EXISTS` is matched in any case, and only before `(`: elsewhere the word is a field name.
  private mutating func parseExists(_ name: Token, open: Token) throws(SQLError) -> Expression {
    guard try isKeyword(.select) else {
      throw error(
        "EXISTS takes a nested query: EXISTS (SELECT ... FROM ... [WHERE ...])", try peek().range)
    }
    let query = try parseNestedQuery()
    let close = try expectClosing(")", opening: open, what: "the nested query of EXISTS")
    return Parser.node(.unary(.exists, Parser.node(.nested(query), open, close)), name, close)
  }

  /// `array = "[" [ expression { "," expression } [ "," ] ] "]" ;`
  private mutating func parseArray(_ open: Token) throws(SQLError) -> Expression {
    var elements: [Expression] = []
    if try !isSymbol("]") {
      repeat {
        elements.append(try parseExpression())
      } while try listGoesOn(before: .symbol("]"), in: "an array")
    }
    return Parser.node(
      .array(elements), open, try expectClosing("]", opening: open, what: "the array", orComma: true))
  }

  /// `object = "{" [ member { "," member } [ "," ] ] "}" ;`
  /// `member = ( string | name | keyword ) ":" expression ;`
  private mutating func parseObject(_ open: Token) throws(SQLError) -> Expression {
    var members: [ObjectLiteralMember] = []
    if try !isSymbol("}") {
      repeat {
        let key = try parseObjectKey()
        members.append(ObjectLiteralMember(key: key, value: try parseExpression()))
      } while try listGoesOn(before: .symbol("}"), in: "an object")
    }
    return Parser.node(
      .object(members), open, try expectClosing("}", opening: open, what: "the object", orComma: true))
  }

  /// The key of an object member and its `:`.
  private mutating func parseObjectKey() throws(SQLError) -> String {
    let keyToken = try peek()
    let key: String
    switch keyToken.kind {
    case .string(let value): key = value
    case .identifier(let name): key = name
    case .keyword: key = lexer.text(keyToken.range)
    default:
      throw error(
        "expected a key (a string or a name) after \(describePrevious()), found \(describe(keyToken))",
        keyToken.range)
    }
    _ = try advance()
    let colon = try peek()
    guard colon.kind == .symbol(":") else {
      throw error("expected ':' after the key \(describe(keyToken)), found \(describe(colon))", colon.range)
    }
    _ = try advance()
    return key
  }

  /// `call = name "(" [ argument { "," argument } ] ")" ;`
  /// `argument = expression | nested_query ;`
  private mutating func parseCall(_ name: Token) throws(SQLError) -> Expression {
    var arguments: [Expression] = []
    if try !isSymbol(")") {
      repeat {
        if try isKeyword(.select), try !nextIsSymbol(","), try !nextIsSymbol(")"), try !nextIsSymbol(".") {
          // `isNull(SELECT VALUE a FROM arr)`: a nested query needs no parentheses of its own
          // as an argument; it ends at the `,` or `)` after it. (`get(select, 0)` and
          // `isNull(select.x)` are a field named select, said as such.)
          let first = try peek()
          let query = try parseNestedQuery()
          arguments.append(Expression(.nested(query), first.range.union(previous?.range ?? first.range)))
        } else {
          arguments.append(try parseExpression())
        }
      } while try consume(.symbol(","))
    }
    return Parser.call(name, arguments, try expectCallEnd(name))
  }

  /// `cast = "cast" "(" expression "AS" type_name ")" ;`
  /// `type_name = name ;`
  ///
  /// `cast` is matched in any case.
  private mutating func parseCast(_ name: Token, open: Token) throws(SQLError) -> Expression {
    let value = try parseExpression()
    let type = try parseCastType()
    let close = try expectClosing(")", opening: open, what: "cast()")
    return Parser.node(.cast(value, type: type.name, typeRange: type.range), name, close)
  }

  /// `"AS" type_name` inside `cast(...)`.
  private mutating func parseCastType() throws(SQLError) -> (name: String, range: SourceRange) {
    try expect(.keyword(.as), "AS and a type name in cast()")
    let typeToken = try peek()
    guard case .identifier(let type) = typeToken.kind else {
      throw error("expected a type name after AS, found \(describe(typeToken))", typeToken.range)
    }
    _ = try advance()
    return (type, typeToken.range)
  }

  /// `case_expr = "CASE" [ expression ] "WHEN" expression "THEN" expression`
  /// `            { "WHEN" expression "THEN" expression } [ "ELSE" expression ] "END" ;`
  private mutating func parseCase(_ caseToken: Token) throws(SQLError) -> Expression {
    let subject = try startsCaseBody() ? nil : try parseExpression()
    try checkFirstWhen()
    var branches: [CaseBranch] = []
    while try consume(.keyword(.when)) {
      let condition = try parseExpression()
      try expect(.keyword(.then), "THEN after the WHEN expression")
      branches.append(CaseBranch(when: condition, then: try parseExpression()))
    }
    let otherwise = try consume(.keyword(.else)) ? try parseExpression() : nil
    let end = try expectCaseEnd(caseToken, hasElse: otherwise != nil)
    return Parser.node(.caseWhen(subject: subject, branches: branches, otherwise: otherwise), caseToken, end)
  }

  /// True when the token after CASE is WHEN, ELSE or END (no CASE value).
  private mutating func startsCaseBody() throws(SQLError) -> Bool {
    let kind = try peek().kind
    return kind == .keyword(.when) || kind == .keyword(.else) || kind == .keyword(.end)
  }

  /// After `CASE [value]`: the first WHEN must come.
  private mutating func checkFirstWhen() throws(SQLError) {
    let token = try peek()
    if token.kind == .keyword(.else) || token.kind == .keyword(.end) {
      throw error("CASE needs at least one WHEN", token.range)
    }
    if token.kind != .keyword(.when) {
      throw error("expected WHEN after the CASE value, found \(describe(token))", token.range)
    }
  }

  /// The END of a CASE.
  private mutating func expectCaseEnd(_ caseToken: Token, hasElse: Bool) throws(SQLError) -> Token {
    let end = try peek()
    guard end.kind == .keyword(.end) else {
      let expected = hasElse ? "END" : "WHEN, ELSE or END"
      throw error(
        "expected \(expected) to close the CASE at \(caseToken.range.start), found \(describe(end))",
        end.range, related: caseToken.range.start)
    }
    return try advance()
  }

  /// The `)` of a call.
  private mutating func expectCallEnd(_ name: Token) throws(SQLError) -> Token {
    let close = try peek()
    guard close.kind == .symbol(")") else {
      throw error(
        "expected ',' or ')' after an argument of '\(lexer.text(name.range))', found \(describe(close))",
        close.range)
    }
    return try advance()
  }

  /// `"." member_name` after `base` (the dot consumed).
  private mutating func parseMember(of base: Expression) throws(SQLError) -> Expression {
    let name = try parseMemberName()
    return Expression(.member(base, name), base.range.union(previous!.range))
  }

  /// Consumes the next operator when it binds at least as tightly as `minimum`.
  private mutating func nextOperator(atLeast minimum: Precedence) throws(SQLError) -> BinaryOperator? {
    guard let op = BinaryOperator(try peek().kind), op.precedence >= minimum else { return nil }
    _ = try advance()
    return op
  }

  /// After `a op b` with a non-associative `op`: another operator of its level is an error.
  private mutating func checkNotChained(_ op: BinaryOperator) throws(SQLError) {
    guard op.precedence.associativity == .none else { return }
    let next = try peek()
    if let second = BinaryOperator(next.kind), second.precedence == op.precedence {
      throw error(
        "comparisons do not chain: put one of the two comparisons in parentheses (`(a \(op.rawValue) b) \(lexer.text(next.range)) c`)",
        next.range)
    }
  }

  /// True when the next token is NOT; an error when NOT is not `allowed` there.
  private mutating func isNot(allowed: Bool) throws(SQLError) -> Bool {
    let token = try peek()
    guard token.kind == .keyword(.not) else { return false }
    if !allowed { throw error("NOT must be in parentheses after \(describePrevious())", token.range) }
    return true
  }

  private static func binary(_ op: BinaryOperator, _ left: Expression, _ right: Expression) -> Expression {
    Expression(.binary(op, left, right), left.range.union(right.range))
  }

  private static func unary(_ op: UnaryOperator, _ token: Token, _ operand: Expression) -> Expression {
    let range = token.range.union(operand.range)
    // `-9223372036854775808` is the smallest Int in every version, though its digits alone exceed
    // Int.max (and so lex as a Decimal).
    if op == .negate, case .literal(.decimal(let magnitude)) = operand.kind, magnitude == smallestIntMagnitude
    {
      return Expression(.literal(.int(.min)), range)
    }
    return Expression(.unary(op, operand), range)
  }

  /// 2^63, the magnitude of `Int.min`.
  private static let smallestIntMagnitude = SQLDecimal.exact(
    negative: false, significand: UInt128(Int.max) + 1, exponent: 0)!

  private static func call(_ name: Token, _ arguments: [Expression], _ close: Token) -> Expression {
    guard case .identifier(let text) = name.kind else { return Expression(.wildcard, name.range) }
    return Expression(.call(name: text, arguments: arguments), name.range.union(close.range))
  }

  /// A node from `first` to `last`.
  private static func node(_ kind: ExpressionKind, _ first: Token, _ last: Token) -> Expression {
    Expression(kind, first.range.union(last.range))
  }

  // MARK: - Tokens

  /// The next token, without consuming it.
  private mutating func peek() throws(SQLError) -> Token {
    if let lookahead { return lookahead }
    let token = try lexer.next()
    lookahead = token
    return token
  }

  /// Consumes the next token.
  private mutating func advance() throws(SQLError) -> Token {
    let token = try peek()
    lookahead = nil
    previous = token
    return token
  }

  /// Consumes the next token when it is `kind`.
  private mutating func consume(_ kind: Token.Kind) throws(SQLError) -> Bool {
    guard try peek().kind == kind else { return false }
    _ = try advance()
    return true
  }

  /// True when the next token is the symbol `text`.
  private mutating func isSymbol(_ text: String) throws(SQLError) -> Bool {
    if case .symbol(let symbol) = try peek().kind { return symbol == text }
    return false
  }

  /// True when the next token is `keyword`.
  private mutating func isKeyword(_ keyword: Keyword) throws(SQLError) -> Bool {
    try peek().kind == .keyword(keyword)
  }

  /// Consumes the next token and enters one nesting level at it.
  private mutating func enterWith() throws(SQLError) -> Token {
    let token = try advance()
    try enter(token)
    return token
  }

  /// Consumes a token of `kind`, or reports `expected <what>, found ...`.
  private mutating func expect(_ kind: Token.Kind, _ what: String) throws(SQLError) {
    let token = try peek()
    guard token.kind == kind else { throw error("expected \(what), found \(describe(token))", token.range) }
    _ = try advance()
  }

  /// Consumes the closing bracket of `opening`, or reports what was found instead.
  private mutating func expectClosing(
    _ symbol: String, opening: Token, what: String, orComma: Bool = false, hint: String = ""
  ) throws(SQLError) -> Token {
    let token = try peek()
    guard token.kind == .symbol(symbol) else {
      let expected = orComma ? "',' or '\(symbol)'" : "'\(symbol)'"
      throw error(
        "expected \(expected) to close \(what) opened at \(opening.range.start), found \(describe(token))\(hint)",
        token.range, related: opening.range.start)
    }
    return try advance()
  }

  /// Enters one nesting level, failing past `maximumDepth`.
  private mutating func enter(_ token: Token) throws(SQLError) {
    depth += 1
    if depth > Parser.maximumDepth {
      throw error("expression nested too deeply (more than \(Parser.maximumDepth) levels)", token.range)
    }
  }

  // MARK: - Messages

  /// An error at the end of the text is placed just after the last token, not past the blanks and
  /// lines after it (a YAML `sql: |` block ends with a line break, so the end was on the next line).
  private func error(_ message: String, _ range: SourceRange, related: SourceLocation? = nil) -> SQLError {
    var range = range
    if range.start.offset >= lexer.bytes.count, let previous { range = SourceRange(at: previous.range.end) }
    return SQLError([Diagnostic(stage: .parse, message, at: range, related: related)], source: lexer.source)
  }

  /// How a token is named in a message: `'x'`, `FROM`, `the string 'a'`, `the end of the statement`.
  private func describe(_ token: Token) -> String {
    switch token.kind {
    case .end: return "the end of the statement"
    case .keyword(let keyword): return keyword.rawValue
    case .string: return "the string \(Parser.shortened(lexer.text(token.range)))"
    // After an expression, where `[` would index it (elsewhere it opens an array literal, and
    // after `AS` it is no name: no hint there).
    case .symbol("[") where previous.map(Self.endsExpression) ?? false:
      return "'[' (IoT SQL has no indexing: get(a, 0) reads an array's element)"
    default: return "'\(Parser.shortened(lexer.text(token.range)))'"
    }
  }

  /// Whether `token` can end an expression (a name, a literal, a closing bracket, `END`).
  private static func endsExpression(_ token: Token) -> Bool {
    switch token.kind {
    case .identifier, .variable, .string, .integer, .decimal: return true
    case .symbol(let symbol): return symbol == ")" || symbol == "]" || symbol == "}"
    case .keyword(let keyword): return [.end, .null, .true, .false].contains(keyword)
    case .end: return false
    }
  }

  /// The last consumed token, named as in `describe`, for "after ..." phrases.
  private func describePrevious() -> String {
    // A `[` before is an array literal that opened, not an index: no hint.
    if let previous, previous.kind == .symbol("[") { return "'['" }
    if let previous { return describe(previous) }
    return openingDescription ?? "the start of the statement"
  }

  /// At most 30 characters of one line, `…` marking a cut.
  private static func shortened(_ text: String) -> String {
    let line = text.prefix { $0 != "\n" && $0 != "\r" }
    return line.count <= 30 && line.count == text.count ? text : String(line.prefix(29)) + "…"
  }

  /// A number literal's value as a Decimal (34 digits; beyond the range the nearest value, warned).
  private mutating func decimal(_ token: Token) throws(SQLError) -> SQLDecimal {
    let text = lexer.text(token.range)
    guard let (value, saturated) = JSONNumber.decimal(parsing: text) else {
      throw error("number '\(Parser.shortened(text))' is out of range", token.range)
    }
    if saturated {
      // Beyond AWS's range (1E-999 to 9.999…E999): the nearest value held, with a warning, so
      // `check` says the number is not kept as written.
      warnings.append(
        Diagnostic(
          .warning, stage: .compile,
          "number '\(Parser.shortened(text))' is beyond the Decimal range (1E-999 to 9.999…E999); it is "
            + "taken as \(Coercions.numberText(value))", at: token.range))
    }
    return value
  }
}
