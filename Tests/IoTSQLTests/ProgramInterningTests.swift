import Testing

@testable import IoTSQL

/// Programs that compile to the same code share one copy of it; programs that differ in anything
/// the VM or an error message reads do not, and each keeps its own text and topic filter.
@Suite struct ProgramInterningTests {
  static func output(_ program: Program, _ payload: String) -> String? {
    var machine = VirtualMachine()
    let context = EvaluationContext(topic: "fleet/1/d/data", payload: Array(payload.utf8))
    guard let evaluation = machine.evaluate(program, context: context) else { return nil }
    return String(decoding: evaluation.payload, as: UTF8.self)
  }

  @Test func rulesFromOneTemplateShareTheirCode() throws {
    let a = try Compiler.compile("SELECT * FROM 'fleet/11/+/data' WHERE temp > 30")
    let b = try Compiler.compile("SELECT * FROM 'fleet/22/+/data' WHERE temp > 30")
    #expect(a.code === b.code)
    #expect(a.source != b.source)
    #expect(a.topicFilter == "fleet/11/+/data")
    #expect(b.topicFilter == "fleet/22/+/data")
    #expect(Self.output(b, #"{"temp":31}"#) == #"{"temp":31}"#)
  }

  @Test(arguments: [
    // A different constant, or the same number of another type.
    ("SELECT * FROM 'a/1' WHERE temp > 30", "SELECT * FROM 'a/2' WHERE temp > 31"),
    ("SELECT 1 AS x FROM 'a/1'", "SELECT 1.0 AS x FROM 'a/1'"),
    ("SELECT 'a' AS x FROM 'a/1'", "SELECT 'b' AS x FROM 'a/1'"),
    // The same text to Swift's `==`, other code points: `é` (U+00E9) and `e` + U+0301.
    ("SELECT '\u{E9}' AS x FROM 'a/1'", "SELECT 'e\u{301}' AS x FROM 'a/1'"),
    // Another path, another key, another position of the same code (runtime errors name it).
    ("SELECT a FROM 'a/1'", "SELECT b FROM 'a/1'"),
    ("SELECT a AS x FROM 'a/1'", "SELECT a AS y FROM 'a/1'"),
    ("SELECT * FROM 'a/1' WHERE temp > 30", "SELECT * FROM 'a/12' WHERE temp > 30"),
  ])
  func programsThatDifferKeepTheirOwnCode(_ first: String, _ second: String) throws {
    let a = try Compiler.compile(first)
    let b = try Compiler.compile(second)
    #expect(a.code !== b.code)
  }

  /// Two string constants of canonically equivalent text are two constants, each written as it
  /// was spelled.
  @Test func equivalentStringsAreTwoConstants() throws {
    let program = try Compiler.compile("SELECT '\u{E9}' AS a, 'e\u{301}' AS b FROM 'fleet/+/d/data'")
    #expect(
      Self.output(program, "{}").map { Array($0.utf8) }
        == Array(#"{"a":"\#u{E9}","b":"e\#u{301}"}"#.utf8))
  }

  /// `1.5` and `1.50` are kept apart (the writer spells both `1.5` today; interning does not rely on it).
  @Test func decimalsSpelledDifferentlyKeepTheirOwnCode() throws {
    let a = try Compiler.compile("SELECT 1.5 AS x FROM 'a/11'", version: .v2015_10_08)
    let b = try Compiler.compile("SELECT 1.50 AS x FROM 'a/1'", version: .v2015_10_08)
    #expect(a.code !== b.code)
    #expect(Self.output(a, "{}") == #"{"x":1.5}"#)
    #expect(Self.output(b, "{}") == #"{"x":1.5}"#)
  }

  /// Programs that differ only in a constant or a position hash apart: 10,000 of them in one bucket
  /// made loading them quadratic.
  @Test func programsThatDifferOnlyInAConstantHashApart() throws {
    var hashes = Set<Int>()
    for index in 0..<200 {
      hashes.insert(
        try Compiler.compile("SELECT * FROM 'fleet/7/+/data' WHERE temp > \(index)").code.hashValue)
      hashes.insert(try Compiler.compile("SELECT 'x\(index)' AS tag FROM 'a'").code.hashValue)
    }
    #expect(hashes.count == 400)
  }

  /// Rules that read the same fields share the names the reader compares, whatever else differs.
  @Test func tablesOfTheSamePathsShareTheirNames() throws {
    let a = try Compiler.compile("SELECT temp, site.floor FROM 'a' WHERE temp > 1")
    let b = try Compiler.compile("SELECT temp + 1 AS t, site.floor AS f FROM 'b' WHERE temp > 2")
    #expect(a.code !== b.code)
    #expect(a.paths.paths == b.paths.paths)
    #expect(a.paths.names === b.paths.names)
  }

  /// The code keeps byte offsets; each program works out lines and columns from its own text.
  @Test func sharedCodeGivesEachProgramItsOwnLinesAndColumns() throws {
    let oneLine = try Compiler.compile("SELECT a FROM 'x' WHERE b > 1")
    let twoLines = try Compiler.compile("SELECT a FROM 'x'\nWHERE b > 1")
    #expect(oneLine.code === twoLines.code)
    let address = try #require(oneLine.instructions.firstIndex { $0.opcode == .jumpIfNotTrue })
    #expect(oneLine.sourceRange(at: address).start == SourceLocation(offset: 24, line: 1, column: 25))
    #expect(twoLines.sourceRange(at: address).start == SourceLocation(offset: 24, line: 2, column: 7))
    // Columns count characters: `é` is two bytes, one column.
    let accented = try Compiler.compile("SELECT 'é' AS e,\n  b + 1 AS c FROM 'x'")
    let add = try #require(accented.instructions.firstIndex { $0.opcode == .add })
    #expect(accented.sourceRange(at: add).start == SourceLocation(offset: 20, line: 2, column: 3))
    #expect(accented.sourceRange(at: add).end == SourceLocation(offset: 25, line: 2, column: 8))
  }

  @Test func codeNoProgramHoldsIsForgotten() throws {
    let sql = "SELECT interning_probe_\(UInt32.random(in: 0...UInt32.max)) FROM 'a'"
    weak var code: Program.Code?
    do {
      let program = try Compiler.compile(sql)
      code = program.code
      #expect(code != nil)
    }
    #expect(code == nil)
    // Compiling it again gives a working program, not a dangling entry.
    #expect(Self.output(try Compiler.compile(sql), "{}") == "{}")
  }
}

/// The table itself, with objects whose hashes all collide.
@Suite struct WeakInternTableTests {
  final class Item: Hashable, Sendable {
    let value: Int
    init(_ value: Int) { self.value = value }
    static func == (a: Item, b: Item) -> Bool { a.value == b.value }
    func hash(into hasher: inout Hasher) { hasher.combine(0) }
  }

  @Test func equalObjectsAreSharedAndCollidingOnesKeptApart() {
    var table = WeakInternTable<Item>()
    let items = (0..<100).map { Item($0) }
    // The owners hold the handles; the table holds them weakly.
    let handles = items.map { table.intern($0) }
    for (handle, item) in zip(handles, items) { #expect(handle.value === item) }
    // Equal copies, past several sweeps: the originals' handles come back.
    for round in 0..<3 {
      for (index, handle) in handles.enumerated() where index % 3 == round {
        #expect(table.intern(Item(index)) === handle)
      }
    }
  }

  @Test func anObjectNoOneHoldsIsNotReturned() {
    var table = WeakInternTable<Item>()
    weak var dropped: Item?
    do {
      let first = Item(1)
      dropped = first
      _ = table.intern(first)
    }
    // Only the handle held the object: both are gone.
    #expect(dropped == nil)
    let second = Item(1)
    let handle = table.intern(second)
    #expect(handle.value === second)
    #expect(table.intern(Item(1)) === handle)
  }
}
