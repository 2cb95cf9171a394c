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

  private var lexer: Lexer
  /// The next token, read on demand.
  private var lookahead: Token?
  /// The last token consumed (for "after ','" in messages and for ranges).
  private var previous: Token?
  /// What the text before the first token is called in messages (`'${'` for templates).
  private var openingDescription: String?
  /// The current nesting depth.
  private var depth = 0

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
    var parser = Parser(lexer, openingDescription: "'${'")
    guard lexer.offset == offset else {
      throw parser.error(
        "template expression offset \(offset) is not the start of a character of the text",
        SourceRange(at: lexer.location))
    }
    let expression = try parser.parseExpression()
    let token = try parser.peek()
    guard token.kind == .symbol("}") else {
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
        whereClause != nil ? "the end of the statement"
        : from != nil ? "WHERE or the end of the statement" : "FROM, WHERE or the end of the statement"
      throw error("expected \(expected), found \(describe(token))", token.range)
    }
    let end = previous?.range.end ?? first.range.start
    return Statement(
      variables: variables, select: select, from: from, whereClause: whereClause,
      range: SourceRange(start: first.range.start, end: end))
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
    if offset < lexer.bytes.count, lexer.bytes[offset] == UInt8(ascii: "'") || lexer.bytes[offset] == UInt8(ascii: "\"") {
      let token = try advance()
      guard case .string(let filter) = token.kind else { throw error("expected a topic filter", token.range) }
      return TopicFilterSource(filter: filter, range: token.range, isQuoted: true)
    }
    var probe = lexer
    let raw = probe.scanRawFilter()
    if raw.text.isEmpty {
      throw error("expected a topic filter after FROM, found the end of the statement", raw.range)
    }
    var wordLexer = lexer
    if let next = try? wordLexer.next(), case .keyword(let keyword) = next.kind,
      keyword == .where || keyword == .select || keyword == .from
    {
      throw error("expected a topic filter after FROM, found \(keyword.rawValue)", next.range)
    }
    lexer = probe
    previous = Token(.string(raw.text), raw.range)
    return TopicFilterSource(filter: raw.text, range: raw.range, isQuoted: false)
  }

  /// `select_list = "VALUE" ( "*" | expression ) | select_item { "," select_item } ;`
  private mutating func parseSelectList() throws(SQLError) -> SelectClause {
    if try consume(.keyword(.value)) {
      let token = try peek()
      if token.kind == .symbol("*") {
        _ = try advance()
        return .value(Expression(.wildcard, token.range))
      }
      return .value(try parseExpression())
    }
    var items: [SelectItem] = []
    repeat {
      items.append(try parseSelectItem())
    } while try consume(.symbol(","))
    return .items(items)
  }

  /// `select_item = ( "*" | expression ) [ "AS" alias ] ;`
  private mutating func parseSelectItem() throws(SQLError) -> SelectItem {
    let start = try peek()
    let kind: SelectItem.Kind
    if start.kind == .symbol("*") {
      _ = try advance()
      kind = .star
    } else {
      kind = .expression(try parseExpression())
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
    case .keyword(let keyword) where keyword != .from && keyword != .where: parts.append(lexer.text(first.range))
    default: throw error("expected an alias name after AS, found \(describe(first))", first.range)
    }
    _ = try advance()
    while try consume(.symbol(".")) {
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
    case .integer:
      throw error(
        "expected a member name after '.', found \(describe(token)) (use get() for keys that are not names)",
        token.range)
    default:
      throw error("expected a member name after '.', found \(describe(token))", token.range)
    }
  }

  // MARK: - Expressions

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
  private mutating func parseBinary(_ minimum: Precedence) throws(SQLError) -> Expression {
    var left: Expression
    let first = try peek()
    if first.kind == .keyword(.not) {
      guard minimum <= .not else {
        throw error("NOT must be in parentheses after \(describePrevious())", first.range)
      }
      _ = try advance()
      try enter(first)
      let operand = try parseBinary(.not)
      depth -= 1
      left = Expression(.unary(.not, operand), first.range.union(operand.range))
    } else {
      left = try parseUnary()
    }
    while true {
      let token = try peek()
      guard let op = BinaryOperator(token.kind), op.precedence >= minimum else { return left }
      _ = try advance()
      let right = try parseBinary(op.precedence.tighter)
      left = Expression(.binary(op, left, right), left.range.union(right.range))
      if op.precedence.associativity == .none {
        let next = try peek()
        if let second = BinaryOperator(next.kind), second.precedence == op.precedence {
          throw error(
            "comparisons do not chain: put '\(op.rawValue)' or '\(lexer.text(next.range))' in parentheses",
            next.range)
        }
      }
    }
  }

  /// `unary = "-" unary | postfix ;`
  private mutating func parseUnary() throws(SQLError) -> Expression {
    let token = try peek()
    guard token.kind == .symbol("-") else { return try parsePostfix() }
    _ = try advance()
    try enter(token)
    let operand = try parseUnary()
    depth -= 1
    return Expression(.unary(.negate, operand), token.range.union(operand.range))
  }

  /// `postfix = primary { "." member_name } ;`
  private mutating func parsePostfix() throws(SQLError) -> Expression {
    var expression = try parsePrimary()
    while try consume(.symbol(".")) {
      let name = try parseMemberName()
      expression = Expression(.member(expression, name), expression.range.union(previous!.range))
    }
    return expression
  }

  /// `primary = literal | array | object | variable | case_expr | cast | call | name | parenthesized ;`
  private mutating func parsePrimary() throws(SQLError) -> Expression {
    let token = try peek()
    switch token.kind {
    case .integer(let text):
      _ = try advance()
      if let int = Int(text) { return Expression(.literal(.int(int)), token.range) }
      return Expression(.literal(.decimal(try decimal(text, token.range))), token.range)
    case .decimal(let text):
      _ = try advance()
      return Expression(.literal(.decimal(try decimal(text, token.range))), token.range)
    case .string(let value):
      _ = try advance()
      return Expression(.literal(.string(value)), token.range)
    case .keyword(.true):
      _ = try advance()
      return Expression(.literal(.bool(true)), token.range)
    case .keyword(.false):
      _ = try advance()
      return Expression(.literal(.bool(false)), token.range)
    case .keyword(.null):
      _ = try advance()
      return Expression(.literal(.null), token.range)
    case .keyword(.case):
      return try nested(token) { (parser) throws(SQLError) in try parser.parseCase() }
    case .variable(let name):
      _ = try advance()
      return Expression(.variable(name), token.range)
    case .identifier(let name):
      _ = try advance()
      guard try peek().kind == .symbol("(") else { return Expression(.field(name), token.range) }
      if name.lowercased() == "cast" {
        return try nested(token) { (parser) throws(SQLError) in try parser.parseCast(token) }
      }
      return try nested(token) { (parser) throws(SQLError) in try parser.parseCall(token, name: name) }
    case .symbol("("):
      return try nested(token) { (parser) throws(SQLError) in try parser.parseParenthesized() }
    case .symbol("["):
      return try nested(token) { (parser) throws(SQLError) in try parser.parseArray() }
    case .symbol("{"):
      return try nested(token) { (parser) throws(SQLError) in try parser.parseObject() }
    case .symbol("*"):
      throw error(
        "'*' stands for the whole message only as a SELECT item or a function argument", token.range)
    default:
      if previous != nil || openingDescription != nil {
        throw error("expected an expression after \(describePrevious())", token.range)
      }
      throw error("expected an expression, found \(describe(token))", token.range)
    }
  }

  /// `parenthesized = "(" expression ")" | "(" nested_query ")" ;`
  private mutating func parseParenthesized() throws(SQLError) -> Expression {
    let open = try advance()
    if try peek().kind == .keyword(.select) {
      let query = try parseNestedQuery()
      let close = try expectClosing(")", opening: open, what: "the nested query")
      return Expression(.nested(query), open.range.union(close.range))
    }
    let inner = try parseExpression()
    let close = try expectClosing(")", opening: open, what: "the expression")
    return Expression(inner.kind, open.range.union(close.range))
  }

  /// `nested_query = "SELECT" select_list "FROM" expression [ "WHERE" expression ] ;`
  private mutating func parseNestedQuery() throws(SQLError) -> NestedQuery {
    _ = try advance()
    let select = try parseSelectList()
    let token = try peek()
    guard token.kind == .keyword(.from) else {
      throw error("expected FROM in the nested query, found \(describe(token))", token.range)
    }
    _ = try advance()
    let from = try parseExpression()
    var whereClause: Expression?
    if try consume(.keyword(.where)) {
      whereClause = try parseExpression()
    }
    return NestedQuery(select: select, from: from, whereClause: whereClause)
  }

  /// `array = "[" [ expression { "," expression } ] "]" ;`
  private mutating func parseArray() throws(SQLError) -> Expression {
    let open = try advance()
    var elements: [Expression] = []
    if try peek().kind != .symbol("]") {
      repeat {
        elements.append(try parseExpression())
      } while try consume(.symbol(","))
    }
    let close = try expectClosing("]", opening: open, what: "the array", orComma: true)
    return Expression(.array(elements), open.range.union(close.range))
  }

  /// `object = "{" [ member { "," member } ] "}" ;`
  /// `member = ( string | name | keyword ) ":" expression ;`
  private mutating func parseObject() throws(SQLError) -> Expression {
    let open = try advance()
    var members: [ObjectLiteralMember] = []
    if try peek().kind != .symbol("}") {
      repeat {
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
        members.append(ObjectLiteralMember(key: key, value: try parseExpression()))
      } while try consume(.symbol(","))
    }
    let close = try expectClosing("}", opening: open, what: "the object", orComma: true)
    return Expression(.object(members), open.range.union(close.range))
  }

  /// `call = name "(" [ argument { "," argument } ] ")" ;`
  /// `argument = "*" | expression ;`
  private mutating func parseCall(_ nameToken: Token, name: String) throws(SQLError) -> Expression {
    let open = try advance()
    var arguments: [Expression] = []
    if try peek().kind != .symbol(")") {
      repeat {
        let token = try peek()
        if token.kind == .symbol("*") {
          _ = try advance()
          arguments.append(Expression(.wildcard, token.range))
        } else {
          arguments.append(try parseExpression())
        }
      } while try consume(.symbol(","))
    }
    let close = try peek()
    guard close.kind == .symbol(")") else {
      throw error(
        "expected ',' or ')' after an argument of '\(name)', found \(describe(close))", close.range)
    }
    _ = try advance()
    _ = open
    return Expression(.call(name: name, arguments: arguments), nameToken.range.union(close.range))
  }

  /// `cast = "cast" "(" expression "AS" type_name ")" ;`
  /// `type_name = name ;`
  ///
  /// `cast` is matched in any case.
  private mutating func parseCast(_ nameToken: Token) throws(SQLError) -> Expression {
    let open = try advance()
    let value = try parseExpression()
    let as_ = try peek()
    guard as_.kind == .keyword(.as) else {
      throw error("expected AS and a type name in cast(), found \(describe(as_))", as_.range)
    }
    _ = try advance()
    let typeToken = try peek()
    guard case .identifier(let type) = typeToken.kind else {
      throw error("expected a type name after AS, found \(describe(typeToken))", typeToken.range)
    }
    _ = try advance()
    let close = try expectClosing(")", opening: open, what: "cast()")
    return Expression(.cast(value, type: type, typeRange: typeToken.range), nameToken.range.union(close.range))
  }

  /// `case_expr = "CASE" [ expression ] "WHEN" expression "THEN" expression`
  /// `            { "WHEN" expression "THEN" expression } [ "ELSE" expression ] "END" ;`
  private mutating func parseCase() throws(SQLError) -> Expression {
    let caseToken = try advance()
    var subject: Expression?
    var token = try peek()
    if token.kind != .keyword(.when), token.kind != .keyword(.else), token.kind != .keyword(.end) {
      subject = try parseExpression()
      token = try peek()
    }
    if token.kind == .keyword(.else) || token.kind == .keyword(.end) {
      throw error("CASE needs at least one WHEN", token.range)
    }
    guard token.kind == .keyword(.when) else {
      throw error("expected WHEN after the CASE value, found \(describe(token))", token.range)
    }
    var branches: [CaseBranch] = []
    while try consume(.keyword(.when)) {
      let condition = try parseExpression()
      let then = try peek()
      guard then.kind == .keyword(.then) else {
        throw error("expected THEN after the WHEN expression, found \(describe(then))", then.range)
      }
      _ = try advance()
      branches.append(CaseBranch(when: condition, then: try parseExpression()))
    }
    var otherwise: Expression?
    if try consume(.keyword(.else)) {
      otherwise = try parseExpression()
    }
    let end = try peek()
    guard end.kind == .keyword(.end) else {
      let expected = otherwise == nil ? "WHEN, ELSE or END" : "END"
      throw error(
        "expected \(expected) to close the CASE at \(caseToken.range.start), found \(describe(end))", end.range)
    }
    _ = try advance()
    return Expression(
      .caseWhen(subject: subject, branches: branches, otherwise: otherwise), caseToken.range.union(end.range))
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

  /// Consumes the closing bracket of `opening`, or reports what was found instead.
  private mutating func expectClosing(
    _ symbol: String, opening: Token, what: String, orComma: Bool = false
  ) throws(SQLError) -> Token {
    let token = try peek()
    guard token.kind == .symbol(symbol) else {
      let expected = orComma ? "',' or '\(symbol)'" : "'\(symbol)'"
      throw error(
        "expected \(expected) to close \(what) opened at \(opening.range.start), found \(describe(token))",
        token.range)
    }
    return try advance()
  }

  /// Runs `body` one nesting level deeper.
  private mutating func nested(
    _ token: Token, _ body: (inout Parser) throws(SQLError) -> Expression
  ) throws(SQLError) -> Expression {
    try enter(token)
    defer { depth -= 1 }
    return try body(&self)
  }

  /// Enters one nesting level, failing past `maximumDepth`.
  private mutating func enter(_ token: Token) throws(SQLError) {
    depth += 1
    if depth > Parser.maximumDepth {
      throw error("expression nested too deeply (more than \(Parser.maximumDepth) levels)", token.range)
    }
  }

  // MARK: - Messages

  private func error(_ message: String, _ range: SourceRange) -> SQLError {
    SQLError([Diagnostic(stage: .parse, message, at: range)], source: lexer.source)
  }

  /// How a token is named in a message: `'x'`, `FROM`, `the string 'a'`, `the end of the statement`.
  private func describe(_ token: Token) -> String {
    switch token.kind {
    case .end: return "the end of the statement"
    case .keyword(let keyword): return keyword.rawValue
    case .string: return "the string \(Parser.shortened(lexer.text(token.range)))"
    default: return "'\(Parser.shortened(lexer.text(token.range)))'"
    }
  }

  /// The last consumed token, named as in `describe`, for "after ..." phrases.
  private func describePrevious() -> String {
    if let previous { return describe(previous) }
    return openingDescription ?? "the start of the statement"
  }

  /// At most 30 characters of one line, `…` marking a cut.
  private static func shortened(_ text: String) -> String {
    let line = text.prefix { $0 != "\n" && $0 != "\r" }
    return line.count <= 30 && line.count == text.count ? text : String(line.prefix(29)) + "…"
  }

  /// A decimal literal's value; magnitudes Foundation's `Decimal` cannot hold are an error.
  private func decimal(_ text: String, _ range: SourceRange) throws(SQLError) -> Decimal {
    guard let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")), !value.isNaN else {
      throw error("number '\(Parser.shortened(text))' is out of range", range)
    }
    return value
  }
}
