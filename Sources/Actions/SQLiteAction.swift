import Foundation
import GRDB
import GRDBSQLite
import IoTSQL
import Logging
import RulesEngine
import Synchronization

/// Writes rule results as rows of a SQLite table (GRDB over the system libsqlite3).
///
/// Configuration: `{"sqlite": {"database": "data/iot.db", "table": "high_temps", "columns":
/// {"name": "${template}"}, "busyTimeoutMs": 1000}}`.
/// - `database`: a path (its folder is created) or a `file:` URI (`mode=ro` and `immutable=1`, which
///   open it read-only, are refused).
/// - `table`: an identifier `[A-Za-z_][A-Za-z0-9_]{0,127}`.
/// - `columns` (optional): column name → template rendered against the message; a template that is
///   one `${expression}` stores the value with its type (number, text, NULL for Undefined, JSON
///   text for an object or array), any other template its text. Without it every
///   top-level key of the result is a column, as AWS's dynamoDBv2: the table is created when missing
///   and new columns are added as new keys appear; nested values are stored as JSON text. Any key
///   names a column, quoted (``columnNameProblem(_:)``). Column names ignore ASCII case, as SQLite's do: a key `Temp` goes to a column `temp`, and a result with keys
///   that differ only in case (`temp` and `Temp`) fails permanently. Automatic columns are bounded,
///   so one hostile payload cannot widen the table for good: a result fails permanently when it would
///   add more than ``newColumnsPerResult`` columns to an existing table, or take the table past
///   ``automaticColumnLimit`` columns.
/// - `key` (optional): the column, or list of columns, that identify a row. A result whose key is
///   already in the table replaces that row (DynamoDB's `putItem`), or with `"update": "columns"`
///   sets only the columns it has (`UpdateItem`), keeping the others; a unique index on exactly the
///   key's columns serves, else the action makes one, `"<table>:key"` (``makeKeyIndex(_:table:in:)``:
///   a table whose rows share a key, or keyed otherwise, fails permanently). A result without a
///   value for every key column (missing, Undefined or null) fails permanently. Without `key`, rows
///   are appended.
/// - `busyTimeoutMs` (default 1000): how long a write waits for a lock before failing (transient).
/// - `synchronous`: `"normal"` (default: a commit survives the daemon's crash; SQLite's WAL reaches
///   the disk at checkpoints, so a power cut can take the last commits) or `"full"` (each commit
///   fsynced before its results are acknowledged; about 18% slower in the replay benchmark).
///
/// Rows of a batch are written in one WAL transaction, consecutive rows with the same columns up to
/// `rowsPerStatement` in one INSERT; results are acknowledged after it commits. A permanent failure
/// writes the batch again in one transaction, halving the parts that fail (each in a savepoint)
/// down to the failing rows, so that only they fail. Values are always bound parameters.
public final class SQLiteAction: BatchAction {
  /// `sqlite`.
  public var kind: String { "sqlite" }
  /// Rows are made from the result's value; the payload bytes are never read.
  public let readsPayloadBytes = false
  /// Rows are written in their order through retries: a transient failure is the database's (a
  /// lock, a full disk), which later rows would meet too, and a keyed table's retried row must not
  /// overwrite a later one of its key.
  public var retriesKeepOrder: Bool { true }

  /// A failed write's transaction is rolled back: nothing of it is in the database.
  public var failedAttemptsLeaveNothing: Bool { true }
  /// `SqliteAction`.
  public var actionName: String { "SqliteAction" }
  /// `database#table`.
  public var resource: String { "\(database)#\(table)" }
  /// The database path or URI.
  public let database: String
  /// The table.
  public let table: String
  /// Explicit columns, when configured.
  public let columns: [(name: String, template: Template)]?
  /// The names of `columns`, one array for every row.
  let columnNames: [String]
  /// The key that makes rows with the same values one row (`key`), or nil: rows are appended.
  public let key: RowKey?

  /// Columns whose values identify a row: a result with a key already in the table replaces its
  /// row, or updates the columns it has.
  public struct RowKey: Sendable, Equatable {
    /// The key's columns, in Unicode's composed form.
    public var names: [String]
    /// True (`"update": "columns"`): a result sets only the columns it has, keeping the row's
    /// others (DynamoDB's `UpdateItem`). False (the default, `"row"`): the row is replaced, its
    /// columns the result lacks left NULL (`putItem`).
    public var updatesColumns: Bool

    /// The name of the unique index the action makes for the key of `table`: `<table>:key`, which
    /// no table of a sqlite action can be named (SQLite keeps tables and indexes in one namespace:
    /// `<table>_key` was refused to a rule writing a table of that name).
    static func indexName(table: String) -> String { "\(table):key" }

    /// The key's columns as a set (SQLite's names ignore ASCII case).
    var folded: Set<String> { Set(names.map(SQLiteAction.folded)) }

    /// Why `row` cannot be written under this key (a key column without a value), or nil.
    func problem(in row: TableRow) -> String? {
      for name in names {
        guard let index = row.names.firstIndex(where: { SQLiteAction.sameColumn($0, name) }) else {
          return "the result has no key column '\(name)': every column of the action's \"key\" needs a value"
        }
        switch row.values[index] {
        case .undefined, .null:
          return "key column '\(name)' is null: every column of the action's \"key\" needs a value"
        default: continue
        }
      }
      return nil
    }
  }
  /// Busy timeout in milliseconds.
  public let busyTimeoutMs: Int
  /// Whether each commit is fsynced (`"synchronous": "full"`).
  public let fullSync: Bool
  /// The table's columns as this action last saw them, on the connection it saw them through (a
  /// database replaced at the path is opened again, and they are read afresh).
  let state = Mutex<(generation: Int, knownColumns: KnownTable?)>((0, nil))

  /// A table's columns as an action last saw them, with the database's schema version then: any
  /// change to the schema since (a column added by another rule, the key's index dropped, the table
  /// made anew by another process) has them read afresh, and the key's index made again.
  struct KnownTable {
    /// The columns, by ``columnKey(_:)``.
    var columns: Set<ExactText>
    /// `PRAGMA schema_version` when they were read or last changed by the action.
    var schemaVersion: Int
  }
  /// The shared connection (``SQLiteDatabase``), taken at `start` (or the first batch) and given
  /// back at `shutdown`.
  let connection = Mutex<SQLiteDatabase?>(nil)

  /// The column lists whose INSERT statements the connection's statement cache holds, at most
  /// ``limit``: results without `columns` take their keys from the payload, and every list of keys
  /// (every order of optional fields) is a statement of its own. GRDB keeps them all, copying its
  /// cache with each new one: 20,000 messages of varied keys took 37 s and 108 MB. Past the limit the
  /// cache starts afresh.
  final class PreparedLists: Sendable {
    /// The most lists whose statements stay prepared.
    static let limit = 256
    /// A table and its column list: one INSERT statement (a connection serves every table of its
    /// database).
    struct List: Hashable {
      var table: String
      var names: [String]
    }
    private let lists = Mutex<Set<List>>([])

    /// How many lists are held.
    var count: Int { lists.withLock { $0.count } }

    /// Notes that the INSERT of `names` into `table` is about to be prepared; true when the cache
    /// must be emptied first.
    func admit(_ names: [String], table: String) -> Bool {
      let list = List(table: table, names: names)
      return lists.withLock { lists in
        guard lists.insert(list).inserted, lists.count > Self.limit else { return false }
        lists = [list]
        return true
      }
    }
  }

  /// True when the setting `name` is the second of its two words, false when it is the first or
  /// absent; another value is a problem.
  static func choice(
    _ configuration: RuleNode, _ name: String, of words: (String, String),
    problems: inout ConfigurationProblems
  ) -> Bool {
    guard let node = configuration[name] else { return false }
    if node.string == words.1 { return true }
    if node.string != words.0 {
      problems.add("'\(name)' must be \"\(words.0)\" or \"\(words.1)\"", at: node.position)
    }
    return false
  }

  /// The most columns a key may have (SQLite's indexes take up to 2,000; a DynamoDB key has two).
  static let maxKeyColumns = 64

  /// The `key` and `update` settings, or nil without `key`; their problems go to `problems`.
  /// `columns`: the configured columns' names, which must hold every key column.
  static func rowKey(_ configuration: RuleNode, columns: [String]?, problems: inout ConfigurationProblems)
    -> RowKey?
  {
    let updatesColumns = choice(configuration, "update", of: ("row", "columns"), problems: &problems)
    if let node = configuration["update"], configuration["key"] == nil {
      problems.add("'update' says what a result with a known key does: it needs 'key'", at: node.position)
    }
    guard let node = configuration["key"] else { return nil }
    var items = [node]
    if case .array(let elements) = node.kind { items = elements }
    guard !items.isEmpty, items.allSatisfy({ $0.string != nil }) else {
      problems.add("'key' must be a column name or a non-empty list of column names", at: node.position)
      return nil
    }
    // Each name is compared with those before it: 100,000 took 100 s to check.
    guard items.count <= maxKeyColumns else {
      problems.add(
        "a key has at most \(maxKeyColumns) columns, this one has \(items.count)", at: node.position)
      return nil
    }
    var names: [String] = []
    for item in items {
      let name = composed(item.string!)
      if name.contains("${") {
        // DynamoDB's hashKeyValue is a template; here the key names the column that holds it.
        let bare = name.replacingExactly("${", with: "").replacingExactly("}", with: "")
        problems.add(
          "key column '\(item.string!)' is a template: 'key' names the result's column whose value is the key "
            + "(as dynamoDBv2's row, not dynamoDB's hashKeyValue): write \"\(bare)\"",
          at: item.position)
      } else if let problem = columnNameProblem(name) {
        problems.add("invalid key column '\(item.string!)': \(problem)", at: item.position)
      } else if names.contains(where: { sameColumn($0, name) }) {
        problems.add("key column '\(item.string!)' is named twice", at: item.position)
      } else if let columns, !columns.contains(where: { sameColumn($0, name) }) {
        problems.add(
          "key column '\(item.string!)' is not one of 'columns': the key's values come from the row written",
          at: item.position)
      }
      names.append(name)
    }
    return RowKey(names: names, updatesColumns: updatesColumns)
  }

  /// Where the action says what no result's outcome carries: rows of a moved database left in its
  /// renamed-aside `-wal`.
  let logger: Logger

  /// The dynamoDB action's item settings, which `import aws` keeps in the sqlite action it makes
  /// from one so that `check` refuses it until they are written as columns.
  public static let dynamoDBSettings = [
    "hashKeyField", "hashKeyValue", "hashKeyType", "rangeKeyField", "rangeKeyValue", "rangeKeyType",
    "payloadField",
  ]

  /// Builds the action from its configuration.
  public init(
    configuration: RuleNode, context: ActionBuildContext, logger: Logger = Logger(label: "iotrules.sqlite")
  ) throws(ActionConfigurationError) {
    self.logger = logger
    let reader = ConfigurationReader(node: configuration, kind: "sqlite")
    var problems = ConfigurationProblems()
    // `import aws` keeps a dynamoDB action's item settings: the rule would run without them.
    if let member = configuration.members?.first(where: { Self.dynamoDBSettings.contains($0.key) }) {
      problems.add(
        "'\(member.key)' is the dynamoDB action's (as are "
          + Self.dynamoDBSettings.filter { $0 != member.key }.map { "'\($0)'" }.joined(separator: ", ")
          + "): a sqlite row holds the result's keys, each a column; write the item's key into the SELECT "
          + "(`topic(2) AS device`) or 'columns', give 'key' to keep one row per key, and remove these settings",
        at: member.keyPosition)
    }
    problems.attempt { () throws(ActionConfigurationError) in
      try reader.checkKeys(
        Set(
          ["database", "table", "columns", "key", "update", "busyTimeoutMs", "synchronous"]
            + Self.dynamoDBSettings))
    }
    let databaseNode =
      problems.attempt { () throws(ActionConfigurationError) in try reader.string("database", required: true)
      }
      ?? nil
    let tableNode =
      problems.attempt { () throws(ActionConfigurationError) in try reader.string("table", required: true) }
      ?? nil
    if let databaseNode, let database = databaseNode.string,
      let problem = Self.problem(withDatabase: database)
    {
      problems.add(problem, at: databaseNode.position)
    }
    if let tableNode, let table = tableNode.string {
      if !isValidIdentifier(table) {
        problems.add(
          "invalid table name '\(table)': it must match [A-Za-z_][A-Za-z0-9_]{0,127}", at: tableNode.position)
      } else if table.lowercased().hasPrefix("sqlite_") {
        problems.add(
          "invalid table name '\(table)': names starting with sqlite_ are SQLite's own",
          at: tableNode.position)
      }
    }
    // At most an hour: SQLite takes the timeout as a 32-bit count of milliseconds.
    let busyTimeoutMs = problems.attempt { () throws(ActionConfigurationError) in
      try reader.int("busyTimeoutMs", maximum: 3_600_000)
    }
    let fullSync = Self.choice(configuration, "synchronous", of: ("normal", "full"), problems: &problems)
    var columns: [(String, Template)]?
    if let columnsNode = configuration["columns"] {
      if let members = columnsNode.members, members.count > 2000 {
        // SQLite's own limit (SQLITE_MAX_COLUMN): the table could never be made.
        problems.add(
          "'columns' names \(members.count) columns; SQLite allows at most 2000 in a table",
          at: columnsNode.position)
      } else if let members = columnsNode.members, !members.isEmpty {
        var list: [(String, Template)] = []
        var names: [String] = []
        for member in members {
          // In Unicode's composed form, as the keys of results are: `é` spelled either way is
          // one column.
          let name = Self.composed(member.key)
          if member.key.contains("${") {
            // As `table` and `key`: the name is fixed, so `c_${v}` would be one column of that name.
            problems.add(
              "column name '\(member.key)' is a name, not a template: it would be one column of that very name",
              at: member.keyPosition)
          } else if let problem = Self.columnNameProblem(name) {
            problems.add("invalid column name '\(member.key)': \(problem)", at: member.keyPosition)
          } else if let same = names.first(where: { Self.sameColumn($0, name) }) {
            problems.add(
              same.isExactly(name)
                ? "columns '\(same)' and '\(member.key)' are one column in Unicode's composed form (NFC), which column names take"
                : "columns '\(same)' and '\(member.key)' differ only in case: SQLite column names ignore case",
              at: member.keyPosition)
          }
          names.append(name)
          guard member.value.string != nil else {
            problems.add(
              "column '\(member.key)' must be a template string"
                + member.value.readingHint(expecting: .string),
              at: member.value.position)
            continue
          }
          if let template = problems.attempt({ () throws(ActionConfigurationError) in
            try reader.template(member.value, field: "sqlite.columns.\(member.key)", context: context)
          }) {
            list.append((name, template))
          }
        }
        columns = list
      } else {
        problems.add(
          "'columns' must be a non-empty object of column name to template", at: columnsNode.position)
      }
    }
    let problemsBeforeKey = problems.list.count
    let key = Self.rowKey(configuration, columns: columns?.map(\.0), problems: &problems)
    do {
      try problems.throwIfAny()
    } catch {
      var error = error
      error.warnings = Self.warnings(
        database: databaseNode?.string, columns: columns?.map(\.0),
        columnsGiven: configuration["columns"] != nil,
        key: problems.list.count == problemsBeforeKey ? key : nil, in: context)
      throw error
    }
    self.key = key
    database = databaseNode!.string!
    table = tableNode!.string!
    self.busyTimeoutMs = busyTimeoutMs! ?? 1000
    self.fullSync = fullSync
    self.columns = columns
    columnNames = columns?.map(\.0) ?? []
  }

  /// The file `database` names: a plain path as written, a `file:` URI's path (after its
  /// authority, `%HH` decoded); nil for an in-memory database, "" for a URI with no path (a
  /// temporary database).
  static func filePath(of database: String) -> String? {
    // SQLite decodes `%HH` in a `file:` URI, its parameters too: `mode=%6Demory` is in memory.
    let uri = database.hasPrefix("file:") ? database.removingPercentEncoding ?? database : database
    if uri == ":memory:" || uri.hasPrefix("file::memory:") { return nil }
    guard database.hasPrefix("file:") else { return database }
    var uriPath = database.dropFirst("file:".count).prefix { $0 != "#" && $0 != "?" }
    // `file://AUTHORITY/path`: the path after the authority (`localhost` or none).
    if uriPath.hasPrefix("//") { uriPath = uriPath.dropFirst(2).drop { $0 != "/" } }
    let path = String(uriPath).removingPercentEncoding ?? String(uriPath)
    return path == "/" ? "" : path
  }

  /// Why `database` names no database file the action can write, or nil.
  static func problem(withDatabase database: String) -> String? {
    if database.isEmpty { return "'database' is empty" }
    if let problem = TemplateProbe.controlCharacterProblem(database) {
      return "'database' \(problem): the rows would go to a file whose name holds it"
    }
    // A path, not a template: `${topic(1)}.db` would name one file, literally.
    if database.contains("${") {
      return "'database' is a path, not a template: '\(database)' would be one file of that very name"
    }
    // An in-memory database loses every row at exit while each write counts as a success. (A plain
    // path is a file's name, whatever it holds: `db/mode=memory.db` is a file.)
    guard let path = filePath(of: database) else {
      return "'database' \(database) is in memory: its rows would be lost at exit; name a file"
    }
    // A plain path ending in `/` names a folder: the action would make it, then fail every write.
    if !database.hasPrefix("file:"), database.hasSuffix("/") {
      return "'database' \(database) ends in '/': it names a folder; name a file"
    }
    if database.hasPrefix("file:") {
      // SQLite opens a `file://HOST/path` of no other host than `localhost` (`invalid uri
      // authority`, which reached the error path as "SQL logic error" for every row).
      let rest = database.dropFirst("file:".count)
      if rest.hasPrefix("//") {
        let authority = rest.dropFirst(2).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if !authority.isEmpty, authority.lowercased() != "localhost" {
          return
            "'database' \(database) names the host '\(authority)': SQLite opens local files only (file:///path, file://localhost/path, or a plain path)"
        }
      }
      // A `file:` URI whose path is empty (`file:`, `file:?mode=rwc`) is a private temporary
      // database, deleted when its connection closes: every row lost at exit.
      if path.isEmpty {
        return
          "'database' \(database) names no file (SQLite makes a temporary database, deleted at exit, of an empty path); name a file"
      }
      let query = database.dropFirst("file:".count).prefix { $0 != "#" }.drop { $0 != "?" }.dropFirst()
      if let problem = readOnlyParameter(in: query) {
        return "'database' \(database) \(problem): every write would fail; leave it out"
      }
      if let problem = uriParameterProblem(in: query, path: String(path)) {
        return "'database' \(database) \(problem)"
      }
      // SQLite makes no folder for a URI (the action makes a plain path's).
      let folder = FileSystem.folder(of: String(path))
      var info = stat()
      if stat(folder, &info) != 0 {
        return
          "'database' \(database): its folder \(folder) does not exist, and a file: URI's folders are not made; make it, or give a plain path"
      }
    }
    // What is at the path now would fail every result to the error path: said where it is written.
    if let problem = FileSystem.fileProblem(String(path), noun: "a database file") {
      return "'database' \(database) \(problem)"
    }
    // A file, or a folder for it and its `-wal`, this process may not write: every write would
    // fail (to a user's permissions; root writes anyway).
    let folder = FileSystem.folder(of: String(path))
    if access(String(path), F_OK) == 0, access(String(path), W_OK) != 0 {
      return
        "'database' \(database) is not writable (\(String(cString: strerror(errno)))): every write would fail"
    }
    if access(folder, F_OK) == 0, access(folder, W_OK) != 0 {
      return
        "'database' \(database): its folder \(folder) is not writable (\(String(cString: strerror(errno)))), where SQLite makes the database and its -wal"
    }
    // A folder to make (a plain path's are made when missing) below one this process may not
    // write (a read-only mount): every write would fail making it.
    let missing = FileSystem.nearestExisting(folder)
    if missing != folder, access(missing, W_OK) != 0 {
      return
        "'database' \(database): its folder \(folder) cannot be made, as \(missing) is not writable (\(String(cString: strerror(errno))))"
    }
    // A file that is there, not empty and not SQLite's (a rule file, a log) fails every write.
    // Not read while this process holds it open (a reload checking a rule): closing any descriptor
    // of the file drops every POSIX lock the process holds on it, the open connection's too.
    if SQLiteDatabase.holdsOpen(String(path)) { return nil }
    let descriptor = open(String(path), O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    if descriptor >= 0 {
      defer { close(descriptor) }
      var header = [UInt8](repeating: 0, count: 16)
      let count = read(descriptor, &header, 16)
      if count > 0, header[..<count] != Array("SQLite format 3\0".utf8)[...] {
        return
          "'database' \(database) is not a SQLite database (the file does not begin with SQLite's header)"
      }
    }
    return nil
  }

  /// What in a `file:` URI's query SQLite would refuse or keep in memory, said for a message
  /// (`mode` other than `ro`, `rw`, `rwc`; `mode=memory` or `vfs=memdb`, in memory; a `vfs` this
  /// SQLite does not have; `mode=rw` without a database at `path`); nil when nothing does.
  static func uriParameterProblem(in query: Substring, path: String) -> String? {
    for (name, value, _) in uriParameters(query) {
      switch name {
      case "mode":
        if value == "memory" {
          return "is in memory (mode=memory): its rows would be lost at exit; name a file"
        }
        if !["ro", "rw", "rwc"].contains(value) {
          return "has mode=\(value), which SQLite does not know (ro, rw, rwc): every write would fail"
        }
        if value == "rw", access(path, F_OK) != 0 {
          return
            "opens an existing database only (mode=rw), and there is none at \(path): use mode=rwc, or leave it out"
        }
      case "vfs":
        if value == "memdb" { return "is in memory (vfs=memdb): its rows would be lost at exit; name a file" }
        if sqlite3_vfs_find(value) == nil {
          return "names vfs=\(value), which this SQLite does not have: every write would fail"
        }
      default: continue
      }
    }
    return nil
  }

  /// A `file:` URI query's parameters as SQLite reads them, names and values percent-decoded, each
  /// with its text as written.
  static func uriParameters(_ query: Substring) -> [(name: String, value: String, written: Substring)] {
    query.split(separator: "&").map { parameter in
      let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
      let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
      return (name, value, parameter)
    }
  }

  /// A URI parameter's boolean as SQLite reads it: leading digits as a number cut to a byte (`1`,
  /// `257`, `1x` are true; `256`, `0` false), else `on`, `yes` or `true` in any case.
  static func uriBoolean(_ value: String) -> Bool {
    let digits = value.utf8.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    if !digits.isEmpty {
      var number: UInt8 = 0
      for digit in digits { number = number &* 10 &+ (digit - UInt8(ascii: "0")) }
      return number != 0
    }
    return ["on", "yes", "true"].contains(value.lowercased())
  }

  /// Which parameter of a `file:` URI's query opens the database for reading only (`mode=ro`,
  /// `immutable=1`, as SQLite reads them: names and values percent-decoded, the boolean true when
  /// yes/true/on or a number other than 0), said for a message; nil when none does.
  static func readOnlyParameter(in query: Substring) -> String? {
    for (name, value, parameter) in uriParameters(query) {
      if name == "mode", value == "ro" { return "opens the database read-only (mode=ro)" }
      if name == "immutable", uriBoolean(value) {
        return "opens the database as immutable (\(parameter)), that is read-only"
      }
    }
    return nil
  }

  /// Delivers one result (a batch of one).
  public func perform(_ input: ActionInput) async throws(ActionError) {
    if let error = await performBatch([input])[0] { throw error }
  }

  /// Writes the rows of `inputs` in one transaction; on a permanent error, row by row to find
  /// which fail.
  public func performBatch(_ inputs: [ActionInput]) async -> [ActionError?] {
    var results = [ActionError?](repeating: nil, count: inputs.count)
    var rows: [(index: Int, row: TableRow)] = []
    var validated: [String] = []
    var machine = VirtualMachine()
    for (index, input) in inputs.enumerated() {
      switch checkedRow(input, validated: &validated, using: &machine) {
      case .success(let row): rows.append((index, row))
      case .failure(let error): results[index] = error
      }
    }
    if rows.isEmpty { return results }
    // A row whose keys would take the table past its automatic columns counting the columns known
    // already fails now, without the write lock (the table has those columns at least). Written,
    // each such row cost a savepoint and a read of the schema under the lock: 5,000 of them held it
    // for 2 to 4 s, and another writer's rows went down their error path as 'database is locked'.
    // (A row whose keys, all new, would stay within the cap is not looked at: no name is hashed for
    // the rows of a table well below it, the daemon's usual case.)
    if columns == nil, let known = state.withLock({ $0.knownColumns?.columns }), !known.isEmpty,
      rows.contains(where: { known.count + $0.row.names.count > Self.automaticColumnLimit })
    {
      rows.removeAll { item in
        guard known.count + item.row.names.count > Self.automaticColumnLimit else { return false }
        let missing = item.row.names.lazy.filter { !known.contains(Self.columnKey($0)) }.count
        guard known.count + missing > Self.automaticColumnLimit,
          let problem = Self.wideningProblem(
            table: table, existing: known.count, missing: missing, creating: false)
        else { return false }
        results[item.index] = problem
        return true
      }
      if rows.isEmpty { return results }
    }
    if key != nil, let problem = keyProblem.withLock({ $0 }),
      Int(Date().timeIntervalSince1970 * 1000) - problem.atMs < Self.keyProblemHoldMs
    {
      for item in rows { results[item.index] = ActionError(.permanent, problem.message) }
      return results
    }
    let queue: DatabaseQueue
    do {
      queue = try openQueue()
    } catch {
      for item in rows { results[item.index] = error }
      return results
    }
    if let error = await write(rows.map(\.row), queue: queue) {
      // The key could not be made unique: the table, not a row, is at fault.
      let tableFault = keyProblem.withLock { $0?.message == error.message }
      if error.kind == .transient || rows.count == 1 || tableFault {
        for item in rows { results[item.index] = error }
      } else {
        for (item, failure) in zip(rows, await writeEach(rows.map(\.row), queue: queue)) {
          results[item.index] = failure
        }
      }
    }
    return results
  }

  /// What this action asks of its connection.
  var askedSettings: SQLiteDatabase.Settings { .init(busyTimeoutMs: busyTimeoutMs, fullSync: fullSync) }

  /// The shared connection, taken from ``SQLiteDatabase`` on first use.
  func sharedDatabase() -> SQLiteDatabase {
    connection.withLock { held in
      if let held { return held }
      let taken = SQLiteDatabase.acquire(database: database, asking: askedSettings, logger: logger)
      held = taken
      return taken
    }
  }

  /// A key column the rule's SELECT never gives (its keys are known: a list without `*`): every
  /// result would fail for want of it.
  public func configurationWarnings(in context: ActionBuildContext) -> [ActionConfigurationWarning] {
    Self.warnings(
      database: database, columns: columns?.map(\.name), columnsGiven: columns != nil, key: key, in: context)
  }

  /// ``configurationWarnings(in:)`` of the settings read so far: also of a configuration in error,
  /// whose warnings are said beside its errors. `columns` is nil when none were read; with
  /// `columnsGiven` the SELECT's keys are not the columns (a `columns` in error gives none).
  static func warnings(
    database: String?, columns: [String]?, columnsGiven: Bool, key: RowKey?, in context: ActionBuildContext
  ) -> [ActionConfigurationWarning] {
    let outputs = context.isErrorAction ? nil : Compiler.outputKeys(of: context.sql)
    // A column named as the row id is written only to a table made with it: the action makes none.
    let written = columns ?? (columnsGiven ? [] : outputs ?? [])
    var said: Set<String> = []
    var warnings = (written + (key?.names ?? []))
      .filter { Self.isRowIDName($0) && said.insert($0.lowercased()).inserted }
      .map { name in
        ActionConfigurationWarning(
          key: columnsGiven ? "columns" : key?.names.contains(name) == true ? "key" : "table",
          message:
            "rule '\(context.ruleName)': column '\(name)' is one of SQLite's names for the row id (rowid, oid, "
            + "_rowid_): only a table made with that column takes it (the action makes no such column)")
      }
    if let database, let problem = unexpandedPathProblem(database, key: "database") {
      warnings.append(
        ActionConfigurationWarning(key: "database", message: "rule '\(context.ruleName)': \(problem)"))
    }
    if context.isErrorAction, columnsGiven {
      // Its rows would say a failure happened, not which, nor keep the message.
      warnings.append(
        ActionConfigurationWarning(
          key: "columns",
          message:
            "rule '\(context.ruleName)': an error action's 'columns' are templates over the incoming message, as "
            + "every template is, and reach none of the error record's fields (ruleName, failures, "
            + "base64OriginalPayload): leave 'columns' out to store the record's fields as columns"))
    }
    if !columnsGiven, !context.isErrorAction, Compiler.selectsValueThatIsNoObject(context.sql) {
      warnings.append(
        ActionConfigurationWarning(
          key: "table",
          message:
            "rule '\(context.ruleName)': the SELECT VALUE gives no object, and without 'columns' each key of an "
            + "object result is a column: every result would fail; give 'columns', or SELECT keys"))
    }
    guard !columnsGiven, let outputs else { return warnings }
    if outputs.count > Self.automaticColumnLimit {
      warnings.append(
        ActionConfigurationWarning(
          key: "table",
          message:
            "rule '\(context.ruleName)': the SELECT gives \(outputs.count) keys, each a column, and automatic "
            + "columns stop at \(Self.automaticColumnLimit): every result would fail unless the table has "
            + "these columns already; give 'columns'"))
    }
    // Keys every result has, refused as every result's columns: each would fail at the write.
    for name in outputs where !Self.isRowIDName(name) {
      if let problem = Self.columnNameProblem(name) {
        warnings.append(
          ActionConfigurationWarning(
            key: "table",
            message:
              "rule '\(context.ruleName)': the SELECT's key '\(clipped(name, keeping: 64))' is not a valid column name "
              + "(\(problem)): each result that has it would fail; name it otherwise with AS, or give 'columns'"
          ))
      }
    }
    if let (first, second) = Self.keysDifferingOnlyInCase(outputs) {
      warnings.append(
        ActionConfigurationWarning(
          key: "table",
          message:
            "rule '\(context.ruleName)': the SELECT's keys '\(first)' and '\(second)' name one SQLite column "
            + "(column names ignore case): each result that has both would fail; name one otherwise with AS, or give 'columns'"
        ))
    }
    guard let key else { return warnings }
    warnings += key.names.filter { name in !outputs.contains { Self.sameColumn($0, name) } }.map { name in
      ActionConfigurationWarning(
        key: "key",
        message:
          "rule '\(context.ruleName)': key column '\(name)' is not one of the SELECT's keys "
          + "(\(outputs.joined(separator: ", "))): every result would fail for want of it")
    }
    return warnings
  }

  /// Another sqlite action writing the same table of the same database with another key, or one
  /// keyed where the other appends: whichever writes first decides the table's unique index, and
  /// the other fails every result (`table 'latest' is keyed by (dev)`, `UNIQUE constraint failed`).
  public func conflict(with other: any Action) -> String? {
    guard let other = other as? SQLiteAction, other !== self, Self.sameColumn(other.table, table),
      Self.sameFile(other.database, database)
    else { return nil }
    func described(_ key: RowKey?) -> String {
      key.map { "keyed by (\($0.names.joined(separator: ", ")))" } ?? "appended to without a key"
    }
    let same =
      switch (key, other.key) {
      case (nil, nil): true
      // As the key's index is found: its columns as a set, in any order.
      case (let mine?, let theirs?): Set(mine.names.map(Self.folded)) == Set(theirs.names.map(Self.folded))
      default: false
      }
    guard !same else { return nil }
    return "table '\(table)' of '\(database)' is \(described(key)) here and \(described(other.key)) there: "
      + "one of the two fails every result, whichever writes second"
  }

  /// The table folded as SQLite folds names, and the database as ``sameFile(_:_:)`` compares it:
  /// actions that may conflict have one key.
  public var conflictKey: String? {
    "sqlite\u{0}\(Self.folded(table))\u{0}\(SQLiteDatabase.file(of: database))"
  }

  /// Whether two `database` settings name one file: spelt alike, or alike once made absolute
  /// (`iot.db` and `./iot.db`); a `file:` URI only as written.
  static func sameFile(_ one: String, _ other: String) -> Bool {
    one == other || SQLiteDatabase.file(of: one) == SQLiteDatabase.file(of: other)
  }

  /// Takes the shared connection. Opening is lazy, at the first batch: a database that cannot be
  /// opened fails each result to its error path.
  public func start() async throws { _ = sharedDatabase() }

  deinit {
    // An action used without `shutdown` (a test, an embedding program) gives its share back too.
    connection.withLock { $0 }?.release(asked: askedSettings)
  }

  /// Gives the shared connection back: the last action using it closes it.
  public func shutdown() async {
    let held = connection.withLock { held in
      defer { held = nil }
      return held
    }
    held?.release(asked: askedSettings)
  }

  /// The open connection; the remembered columns are forgotten when it is not the one they were
  /// read through.
  func openQueue() throws(ActionError) -> DatabaseQueue {
    let (queue, generation) = try sharedDatabase().openQueue()
    state.withLock { state in
      if state.generation != generation { state = (generation, nil) }
    }
    return queue
  }

  /// `error` of a write through `queue`, transient when another action reopened the database
  /// meanwhile (the file was replaced): the batch goes again through the new connection.
  func writeError(_ error: any Error, through queue: DatabaseQueue) -> ActionError {
    var failure = Self.actionError(error, "insert into \(table)")
    let database = sharedDatabase()
    if (error as? DatabaseError)?.resultCode.primaryResultCode == .SQLITE_BUSY,
      database.walPending.load(ordering: .relaxed)
    {
      // Said, as the cause differs from a writer's lock: readers block this database's writes.
      failure.message +=
        "; the database is not in WAL mode yet (another connection held it when it was opened, so it could not switch: a reader then blocks every write), switched before each batch once nothing holds it"
    }
    guard database.state.withLock({ $0 }) !== queue else { return failure }
    return ActionError(.transient, failure.message + " (the database was opened again meanwhile)")
  }

  /// One row: column names and values, in order. A result whose keys a SELECT list made shares
  /// them with every other result of its rule (one array): rows then cost no array of their own.
  struct TableRow {
    var names: [String]
    var values: [Value]
  }

  /// The row of one result as a write takes it to the database, or why the action refuses it
  /// before (permanently): ``makeRow(_:validated:using:)``'s checks, then a key column without a
  /// value. What needs the database (a table's width, the key's index) is judged at the write.
  func checkedRow(_ input: ActionInput, validated: inout [String], using machine: inout VirtualMachine)
    -> Result<TableRow, ActionError>
  {
    let made = makeRow(input, validated: &validated, using: &machine)
    if case .success(let row) = made, let problem = key?.problem(in: row) {
      return .failure(ActionError(.permanent, problem))
    }
    return made
  }

  /// What a write would make of `input` before it reaches the database, for previews (`iotrules
  /// test`, the REPL's `.rule`): the row's columns with each value as SQLite stores it (``stored(_:)``:
  /// NULL as null, a Boolean as 0 or 1, an object or array as its JSON text, a decimal as a REAL,
  /// or its text past a double's reach, Binary as a blob), or why the daemon refuses the row, by the
  /// very checks a write makes (column names, keys that differ only in case, a key column without a
  /// value). What depends on the database (the columns a table may still take, the key's unique
  /// index) is not judged: no database is opened.
  public func rowPreview(_ input: ActionInput) -> Result<[(column: String, value: Value)], ActionError> {
    var validated: [String] = []
    var machine = VirtualMachine()
    // A key named as the row id, which the daemon refuses when the table has no such column yet
    // (a preview does not open the database): said, as `run` would say it at a new table.
    let checked = checkedRow(input, validated: &validated, using: &machine)
    if case .success(let row) = checked,
      let problem = row.names.lazy.compactMap({ Self.rowIDNameProblem($0, table: self.table) }).first
    {
      return .failure(problem)
    }
    return checked.map { row in
      zip(row.names, row.values).map { name, value in
        switch Self.stored(value) {
        case .null: (name, .null)
        case .integer(let number): (name, .int(Int(number)))
        case .real(let number): (name, .decimal(SQLDecimal(floatLiteral: number)))
        case .text(let text): (name, .string(text))
        case .blob(let bytes): (name, .binary(bytes))
        }
      }
    }
  }

  /// The row of one result. `validated` is the last list of names found valid: a result with the
  /// same names (usually the very same array, which compares at once) is not checked again.
  /// `machine` evaluates column templates (one VM for a batch).
  func makeRow(_ input: ActionInput, validated: inout [String], using machine: inout VirtualMachine)
    -> Result<TableRow, ActionError>
  {
    if let columns {
      let context = input.message.evaluationContext()
      var values: [Value] = []
      values.reserveCapacity(columns.count)
      // A row's columns share one budget of CPU time, as one template's parts do.
      let began = machine.shareBudget()
      defer { if began { machine.endSharedBudget() } }
      for (index, column) in columns.enumerated() {
        // A template that is one `${expression}` stores the value with its type (a number as a
        // number, Undefined as NULL), as a row without `columns` does; any other is text.
        do {
          if let program = column.template.soleExpression {
            values.append(
              try machine.evaluateExpression(program, context: context, variables: input.evaluation.variables)
            )
          } else {
            values.append(
              .string(
                try column.template.render(
                  context: context, variables: input.evaluation.variables, using: &machine)))
          }
        } catch {
          return .failure(
            ActionError(
              .permanent, "column '\(columnNames[index])': \(error.described(in: column.template.source))"))
        }
      }
      let row = TableRow(names: columnNames, values: values)
      guard let key, key.updatesColumns, row.values.contains(where: \.isUndefined) else {
        return .success(row)
      }
      // Updating, a column whose template is Undefined is one the result does not have: it keeps its
      // value, as a key a result lacks does without `columns` (UpdateItem). Key columns stay, to be
      // refused as missing.
      let kept = row.names.indices.filter { index in
        !row.values[index].isUndefined || key.names.contains { Self.sameColumn($0, row.names[index]) }
      }
      return .success(TableRow(names: kept.map { row.names[$0] }, values: kept.map { row.values[$0] }))
    }
    guard case .object(let object) = input.evaluation.value else {
      return .failure(
        ActionError(
          .permanent,
          "the result is \(input.evaluation.value.typeName), not an object: without 'columns' each key is a column"
        ))
    }
    let keys = object.keys
    let ascii = keys.allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }
    var row = TableRow(names: ascii ? keys : keys.map(Self.composed), values: object.values)
    if row.values.contains(where: \.isUndefined) {
      // Undefined members are no columns (the writer leaves them out of JSON too).
      let kept = row.values.indices.filter { !row.values[$0].isUndefined }
      row = TableRow(names: kept.map { row.names[$0] }, values: kept.map { row.values[$0] })
    }
    if row.names.isEmpty { return .failure(ActionError(.permanent, "the result has no columns to write")) }
    if row.names == validated { return .success(row) }
    for key in row.names {
      if let problem = Self.columnNameProblem(key) {
        return .failure(ActionError(.permanent, "key '\(key)' is not a valid column name: \(problem)"))
      }
    }
    if let (first, second) = Self.keysDifferingOnlyInCase(row.names) {
      // Keys equal once composed were spelled apart only by Unicode normalisation (`é` as U+00E9 and
      // as `e` + U+0301).
      let why =
        first.isExactly(second)
        ? "are one key in Unicode's composed form (NFC), which column names take"
        : "differ only in case: SQLite column names ignore case"
      return .failure(
        ActionError(
          .permanent, "keys '\(first)' and '\(second)' \(why), so they cannot be stored as two columns"))
    }
    validated = row.names
    return .success(row)
  }

  /// Two keys of `row` that name the same SQLite column (names compare ASCII case-insensitively),
  /// or nil.
  static func keysDifferingOnlyInCase(_ names: [String]) -> (String, String)? {
    guard names.count > 1 else { return nil }
    if names.count > 16 {
      var seen: [String: String] = [:]
      for key in names {
        if let other = seen.updateValue(key, forKey: Self.folded(key)) { return (other, key) }
      }
      return nil
    }
    for index in names.indices {
      for later in names.indices[(index + 1)...] where sameColumn(names[index], names[later]) {
        return (names[index], names[later])
      }
    }
    return nil
  }

  /// Why `name` cannot name a column, or nil. Any text does, quoted (`"device-id"`, `"New Col"`,
  /// `"température"`: dynamoDBv2's attribute names, which `import aws` turns into this action):
  /// not empty, at most 128 bytes, no control character. (A new column is also none of SQLite's
  /// names for the row id: ``rowIDNameProblem(_:table:)``.)
  static func columnNameProblem(_ name: String) -> String? {
    if name.isEmpty { return "it is empty" }
    if name.utf8.count > 128 { return "longer than 128 bytes" }
    if name.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
      return "it holds a control character"
    }
    return nil
  }

  /// `name` in Unicode's composed form (NFC): Swift's strings compare `é` and `e` + U+0301 equal,
  /// SQLite's column names by their bytes, so both spellings are written to the one column.
  static func composed(_ name: String) -> String {
    name.utf8.allSatisfy { $0 < 0x80 } ? name : name.precomposedStringWithCanonicalMapping
  }

  /// `name` as an SQL identifier: in double quotes, a quote in it doubled.
  static func quoted(_ name: String) -> String {
    // Byte for byte: a `"` followed by a combining mark is no `"` Character, and stayed single,
    // ending the identifier early (a payload key then ran SQL of its own).
    "\"" + (name.utf8.contains(0x22) ? name.replacingExactly("\"", with: "\"\"") : name) + "\""
  }

  /// `name` with ASCII letters in lower case: SQLite compares column names that way (`É` and `é`
  /// are two columns to it).
  static func folded(_ name: String) -> String {
    guard name.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) else { return name }
    return String(decoding: name.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
  }

  /// A column as the action remembers it: folded as SQLite folds names, compared by its bytes as
  /// SQLite compares them (a column named `cafe` + U+0301 by another process is not `café`).
  static func columnKey(_ name: String) -> ExactText { ExactText(folded(name)) }

  /// Whether two identifiers name the same column: equal but for ASCII case.
  static func sameColumn(_ first: String, _ second: String) -> Bool {
    let (a, b) = (first.utf8, second.utf8)
    guard a.count == b.count else { return false }
    func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte }
    return zip(a, b).allSatisfy { lower($0) == lower($1) }
  }

  /// A value in one of SQLite's storage classes, as a column stores it.
  enum Stored {
    /// NULL.
    case null
    /// INTEGER.
    case integer(Int64)
    /// REAL.
    case real(Double)
    /// TEXT.
    case text(String)
    /// BLOB.
    case blob([UInt8])
  }

  /// How a column stores `value`: Undefined and null as NULL, booleans as 0 or 1, decimals as REALs
  /// (or their text, below), arrays and objects as JSON text, Binary as a blob.
  static func stored(_ value: Value) -> Stored {
    switch value {
    case .undefined, .null: return .null
    case .bool(let flag): return .integer(flag ? 1 : 0)
    case .int(let number): return .integer(Int64(number))
    case .decimal(let number):
      // A REAL, the nearest double; a decimal beyond a double's normal range (1E400, 1E-400, and
      // 1.2345E-320, which a subnormal double keeps 4 digits of) is kept as its text rather than
      // stored as infinity, 0 or a few digits, unless the subnormal double is the number itself.
      let double = Coercions.nearestDouble(number)
      if double.isNormal || number.isZero {
        // A whole number whose nearest double reads back as another number is kept exactly, rather
        // than lose digits: an INTEGER within 64 bits (an epoch in nanoseconds that 2015-10-08 keeps
        // a Decimal, `1700000000123456789.0`, was a REAL of 17 digits), else its digits as text
        // (12345678901234567890 reads back as 12345678901234567000). One that reads back as itself
        // (1E19, 1.5E30, 2015-10-08's `10.0`) is a REAL. A fraction is a REAL, to 17 digits.
        // (A whole number below 2^53 is its double exactly: no text to compare.)
        if number.isWhole, (number.exactInt?.magnitude ?? .max) >= 1 << 53,
          SQLDecimal(string: "\(double)") != number
        {
          return number.exactInt.map { .integer(Int64($0)) } ?? .text(number.description)
        }
        return .real(double)
      }
      // A subnormal double that reads back as the very number (-1E-310, 5E-324) loses nothing; nor
      // does Java's spelling of a one-digit one, two digits (4.9E-324, Double.MIN_VALUE as an
      // AWS or Java producer writes it).
      if double.isSubnormal {
        let shortest = "\(double)"
        if SQLDecimal(string: shortest) == number { return .real(double) }
        let digits = shortest.utf8.prefix(while: { $0 != UInt8(ascii: "e") })
        if digits.filter({ (0x31...0x39).contains($0) }).count == 1,
          SQLDecimal(string: String(format: "%.1e", double)) == number
        {
          return .real(double)
        }
      }
      return .text(number.description)
    case .string(let text): return .text(text)
    case .array, .object: return .text(JSONWriter.string(value))
    case .binary(let bytes): return .blob(bytes)
    }
  }

  /// Binds `value` to parameter `index` (from 1) as a column stores it (``stored(_:)``). Bound
  /// directly through the C API: a row costs no boxed arguments.
  static func bind(_ value: Value, at index: Int32, in statement: OpaquePointer) -> Int32 {
    // SQLITE_TRANSIENT: SQLite copies the bytes before the call returns.
    let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    switch stored(value) {
    case .null: return sqlite3_bind_null(statement, index)
    case .integer(let number): return sqlite3_bind_int64(statement, index, number)
    case .real(let number): return sqlite3_bind_double(statement, index, number)
    case .text(var text):
      // Its UTF-8 in place (a small string on the stack): no C string made for the call. An empty
      // string has no base address, and a NULL pointer would bind NULL instead of ''.
      return text.withUTF8 { utf8 in
        guard let base = utf8.baseAddress, !utf8.isEmpty else {
          return sqlite3_bind_text(statement, index, "", 0, transient)
        }
        return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
          sqlite3_bind_text(statement, index, $0, Int32(utf8.count), transient)
        }
      }
    case .blob(let bytes):
      if bytes.isEmpty { return sqlite3_bind_zeroblob(statement, index, 0) }
      return bytes.withUnsafeBytes {
        sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), transient)
      }
    }
  }

  /// At most this many rows go in one INSERT statement (fewer when their parameters would pass
  /// SQLite's limit).
  static let rowsPerStatement = 32

  /// `INSERT INTO "table" ("a", "b") VALUES (?, ?), ...` with `rows` groups of parameters. With a
  /// `key`, a row whose key is in the table already replaces it (`INSERT OR REPLACE`) or updates
  /// its columns (`ON CONFLICT (key) DO UPDATE SET`, for the columns outside the key).
  static func insertSQL(table: String, names: [String], rows: Int, key: RowKey? = nil) -> String {
    let list = names.map(quoted).joined(separator: ", ")
    let group = "(" + Array(repeating: "?", count: names.count).joined(separator: ", ") + ")"
    let verb = key.map { $0.updatesColumns ? "INSERT" : "INSERT OR REPLACE" } ?? "INSERT"
    var sql =
      "\(verb) INTO \"\(table)\" (\(list)) VALUES "
      + Array(repeating: group, count: rows).joined(separator: ", ")
    if let key, key.updatesColumns {
      let updated = names.filter { name in !key.names.contains { sameColumn($0, name) } }
      sql += " ON CONFLICT (" + key.names.map(quoted).joined(separator: ", ") + ") DO "
      sql +=
        updated.isEmpty
        ? "NOTHING"
        : "UPDATE SET " + updated.map { "\(quoted($0)) = excluded.\(quoted($0))" }.joined(separator: ", ")
    }
    return sql
  }

  /// Binds `rows` (all with the statement's columns, as many as its groups of parameters) to a
  /// prepared INSERT and runs it.
  static func insert(_ rows: ArraySlice<TableRow>, with statement: GRDB.Statement, in db: Database) throws {
    let handle = statement.sqliteStatement
    sqlite3_reset(handle)
    var code = SQLITE_OK
    var parameter: Int32 = 1
    for row in rows {
      for value in row.values where code == SQLITE_OK {
        code = bind(value, at: parameter, in: handle)
        parameter += 1
      }
    }
    if code == SQLITE_OK { code = sqlite3_step(handle) }
    if code == SQLITE_DONE || code == SQLITE_ROW {
      sqlite3_reset(handle)
      return
    }
    let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
    // The extended code of a failed step is the statement's reset code.
    let extended = sqlite3_reset(handle)
    throw DatabaseError(
      resultCode: ResultCode(rawValue: extended != SQLITE_OK ? extended : code), message: message,
      sql: statement.sql)
  }

  /// Whether a failed INSERT of `"update": "columns"` may be an update of an existing row: SQLite
  /// checks NOT NULL on the INSERT half of an upsert before it finds the key's conflict, so a
  /// result updating a row of a table with a NOT NULL column it does not write (a device registry's
  /// `name` beside the latest `temp`) failed, where DynamoDB's `UpdateItem` sets only its columns.
  /// (Not when the failure ended the transaction, a column's `NOT NULL ON CONFLICT ROLLBACK`: the
  /// rows would be written outside it; the failure takes its way, as any such row's.)
  static func updatesExisting(after error: DatabaseError, key: RowKey?, in db: Database) -> Bool {
    key?.updatesColumns == true && error.extendedResultCode == .SQLITE_CONSTRAINT_NOTNULL
      && db.isInsideTransaction
  }

  /// Inserts one row with `statement`; under `"update": "columns"`, a row refused for a NOT NULL
  /// column it lacks updates the row with its key, when there is one (else the refusal stands).
  static func insertOrUpdate(
    _ row: ArraySlice<TableRow>, with statement: GRDB.Statement, into table: String, key: RowKey?,
    in db: Database
  ) throws {
    do {
      try insert(row, with: statement, in: db)
    } catch let error as DatabaseError where updatesExisting(after: error, key: key, in: db) {
      guard let key, let only = row.first, try update(only, in: table, key: key, in: db) else { throw error }
    }
  }

  /// `UPDATE "table" SET <the row's columns outside the key> WHERE <key columns> = <its values>`:
  /// true when a row had the key (and was updated).
  static func update(_ row: TableRow, in table: String, key: RowKey, in db: Database) throws -> Bool {
    var keyed: [Int] = []
    for name in key.names {
      guard let at = row.names.firstIndex(where: { sameColumn($0, name) }) else { return false }
      keyed.append(at)
    }
    let others = row.names.indices.filter { !keyed.contains($0) }
    // With no other column, the key set to itself: the row is "changed" when it exists.
    let set = others.isEmpty ? keyed : others
    let sql =
      "UPDATE \"\(table)\" SET " + set.map { "\(quoted(row.names[$0])) = ?" }.joined(separator: ", ")
      + " WHERE " + keyed.map { "\(quoted(row.names[$0])) = ?" }.joined(separator: " AND ")
    let statement = try db.cachedStatement(sql: sql)
    let handle = statement.sqliteStatement
    sqlite3_reset(handle)
    var code = SQLITE_OK
    for (offset, column) in (set + keyed).enumerated() where code == SQLITE_OK {
      code = bind(row.values[column], at: Int32(offset + 1), in: handle)
    }
    if code == SQLITE_OK { code = sqlite3_step(handle) }
    guard code == SQLITE_DONE else {
      let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
      let extended = sqlite3_reset(handle)
      throw DatabaseError(
        resultCode: ResultCode(rawValue: extended != SQLITE_OK ? extended : code), message: message, sql: sql)
    }
    sqlite3_reset(handle)
    return sqlite3_changes(db.sqliteConnection) > 0
  }

  func write(_ rows: [TableRow], queue: DatabaseQueue) async -> ActionError? {
    await sharedDatabase().switchToWALIfPending(queue)
    let known = state.withLock { $0.knownColumns }
    do {
      let columns: KnownTable
      do {
        columns = try await write(rows, queue: queue, known: known)
      } catch let error as DatabaseError where known != nil && Self.isStaleSchema(error) {
        // The columns this action remembered are out of date: another rule, another process or
        // one of its own retries changed the table (or dropped it). The transaction rolled back;
        // it runs once more with the table's columns read afresh.
        columns = try await write(rows, queue: queue, known: nil)
      }
      state.withLock { $0.knownColumns = columns }
      return nil
    } catch let error as KeyIndexError {
      state.withLock { $0.knownColumns = nil }
      keyProblem.withLock { $0 = (error.message, Int(Date().timeIntervalSince1970 * 1000)) }
      return ActionError(.permanent, error.message)
    } catch {
      state.withLock { $0.knownColumns = nil }
      return writeError(error, through: queue)
    }
  }

  /// Whether `error` says the table is not as this action remembered it.
  static func isStaleSchema(_ error: DatabaseError) -> Bool {
    guard error.resultCode.primaryResultCode == .SQLITE_ERROR, let message = error.message else {
      return false
    }
    return message.hasPrefix("duplicate column name") || message.hasPrefix("no such table")
      || message.contains("has no column named")
      // The key's index was dropped meanwhile: it is made again.
      || message.hasPrefix("ON CONFLICT clause does not match")
  }

  /// Writes `rows` in one transaction, adding the table and columns missing from `known` (read
  /// from the database when nil); returns the table's columns afterwards.
  private func write(_ rows: [TableRow], queue: DatabaseQueue, known: KnownTable?) async throws -> KnownTable
  {
    let table = self.table
    let prepared = sharedDatabase().prepared
    let bounded = columns == nil
    let key = self.key
    return try await sharedDatabase().groupWrite(through: queue) { db -> KnownTable in
      try Self.insert(
        rows[...], into: table, known: known, prepared: prepared, bounded: bounded, key: key, in: db)
    }
  }

  /// Writes again, in one transaction, a batch that failed permanently, to find its failing rows:
  /// each half in a savepoint, a half that fails halved again, down to parts of 8 written row by row. A batch with a
  /// few bad rows takes a few dozen savepoints, not a transaction a row; a row that fails is rolled
  /// back with everything it did (a column it added too), the others are kept in their order. A
  /// transient failure fails its whole part (halving would only meet it again); when the
  /// transaction itself fails, every row not failed already gets its error. A row whose own
  /// conflict clause rolls the whole transaction back (`ON CONFLICT ROLLBACK`, a trigger's
  /// `RAISE(ROLLBACK, ...)`), savepoints and all, has the batch written again a row a transaction,
  /// so that it fails alone, with its own reason.
  func writeEach(_ rows: [TableRow], queue: DatabaseQueue) async -> [ActionError?] {
    let known = state.withLock { $0.knownColumns }
    let table = self.table
    let prepared = sharedDatabase().prepared
    let bounded = self.columns == nil
    let key = self.key
    let rolledBack = RolledBack()
    do {
      let (columns, failures) = try await queue.write { db -> (KnownTable?, [ActionError?]) in
        var columns = known
        var failures = [ActionError?](repeating: nil, count: rows.count)
        // Once a part fails transiently (a full disk, an I/O error), the rows after it are not
        // written but fail with it, to be retried after it in their order: a later row of its key
        // written now would be overwritten by the retry's older one.
        var transient: ActionError?
        func attempt(_ part: Range<Int>) {
          if rolledBack.happened.withLock({ $0 }) { return }
          if let transient {
            for index in part { failures[index] = transient }
            return
          }
          do {
            try db.inSavepoint {
              do {
                columns = try Self.insert(
                  rows[part], into: table, known: columns, prepared: prepared, bounded: bounded, key: key,
                  in: db)
              } catch let error as DatabaseError where columns != nil && Self.isStaleSchema(error) {
                // The remembered columns are out of date: once more, read afresh.
                columns = try Self.insert(
                  rows[part], into: table, known: nil, prepared: prepared, bounded: bounded, key: key, in: db)
              }
              return .commit
            }
          } catch {
            if sqlite3_get_autocommit(db.sqliteConnection) != 0 {
              // No transaction any more: the part's own conflict clause rolled all of it back.
              rolledBack.happened.withLock { $0 = true }
              return
            }
            // A column this part added was rolled back with it: read the columns again.
            columns = nil
            let failure = Self.actionError(error, "insert into \(table)")
            if failure.kind == .transient { transient = failure }
            if part.count == 1 || failure.kind == .transient {
              for index in part { failures[index] = failure }
            } else {
              halve(part)
            }
          }
        }
        func halve(_ part: Range<Int>) {
          // A small part is written row by row: when bad rows are many, halving further would
          // meet them again and again.
          if part.count <= 8 {
            for index in part { attempt(index..<index + 1) }
            return
          }
          let middle = part.lowerBound + part.count / 2
          attempt(part.lowerBound..<middle)
          attempt(middle..<part.upperBound)
        }
        // The whole batch failed already: start with its halves.
        if rows.count == 1 { attempt(0..<1) } else { halve(0..<rows.count) }
        if rolledBack.happened.withLock({ $0 }) { throw RolledBack.Marker() }
        return (columns, failures)
      }
      state.withLock { $0.knownColumns = columns }
      return failures
    } catch {
      state.withLock { $0.knownColumns = nil }
      if rolledBack.happened.withLock({ $0 }) { return await writeEachAlone(rows, queue: queue) }
      return [ActionError?](repeating: writeError(error, through: queue), count: rows.count)
    }
  }

  /// Set when a row's conflict clause rolled `writeEach`'s transaction back.
  final class RolledBack: Sendable {
    let happened = Mutex(false)
    /// Ends the transaction that is no more.
    struct Marker: Error {}
  }

  /// Writes each row in a transaction of its own, in order: each fails alone, with its reason.
  func writeEachAlone(_ rows: [TableRow], queue: DatabaseQueue) async -> [ActionError?] {
    let table = self.table
    let prepared = sharedDatabase().prepared
    let bounded = self.columns == nil
    let key = self.key
    var failures: [ActionError?] = []
    failures.reserveCapacity(rows.count)
    var known: KnownTable?
    for index in rows.indices {
      // After a transient failure the rest wait for the retry, in their order (see writeEach).
      if let transient = failures.last.flatMap({ $0 }), transient.kind == .transient {
        failures.append(transient)
        continue
      }
      let columns = known
      do {
        known = try await queue.write { db in
          try Self.insert(
            rows[index...index], into: table, known: columns, prepared: prepared, bounded: bounded, key: key,
            in: db)
        }
        failures.append(nil)
      } catch {
        known = nil
        failures.append(Self.actionError(error, "insert into \(table)"))
      }
    }
    state.withLock { $0.knownColumns = known }
    return failures
  }

  /// Inserts `rows` into `table` inside the caller's transaction, adding the table and columns
  /// missing from `known` (read from the database when nil); returns the table's columns afterwards.
  /// `bounded`: the columns come from results' keys, and their number is bounded
  /// (``wideningProblem(table:existing:missing:creating:)``); configured `columns` are not. With a
  /// `key`, its unique index is made when the columns are read afresh (a table seen for the first
  /// time, or changed meanwhile), and rows with a known key replace or update theirs.
  static func insert(
    _ rows: ArraySlice<TableRow>, into table: String, known: KnownTable?, prepared: PreparedLists,
    bounded: Bool = true, key: RowKey? = nil, in db: Database
  ) throws -> KnownTable {
    // What was known holds only while the schema has not changed since.
    let version = try Int.fetchOne(db, sql: "PRAGMA schema_version") ?? -1
    let known = known.flatMap { $0.schemaVersion == version ? $0.columns : nil }
    var columns = known ?? []
    var keyIndexed = key == nil || known != nil
    // Set when this insert changes the schema (a table, a column, the key's index): the version
    // is read again at the end, else it is the one read here.
    var changedSchema = false
    var lastNames: [String] = []
    var lastStatement: GRDB.Statement?
    // The statement for a whole group of rows with `lastNames`, once a group has been met.
    var lastGroupStatement: GRDB.Statement?
    // Column names in lower case: SQLite compares them ignoring case, so a key `Temp` is
    // written to an existing column `temp` (INSERT names it either way). `table_xinfo`, not
    // `table_info`, which leaves generated columns out: a key naming one was taken for a new
    // column, and the row failed on "duplicate column name" instead of SQLite's own word.
    if known == nil {
      columns = Set(
        try Row.fetchAll(db, sql: "PRAGMA table_xinfo(\"\(table)\")").map {
          Self.columnKey($0["name"] as String)
        })
    }
    // Up to `rowsPerStatement` rows in one INSERT: SQLite runs one statement per group instead
    // of one per row (1.2 to 1.6 times its single-row rate for the benchmark's rows).
    let variableLimit = Int(sqlite3_limit(db.sqliteConnection, SQLITE_LIMIT_VARIABLE_NUMBER, -1))
    var index = rows.startIndex
    while index < rows.endIndex {
      let row = rows[index]
      // Consecutive rows usually have the same columns (often the very same array): one
      // statement serves them all, and their columns exist already.
      let sameColumns = lastStatement != nil && lastNames == row.names
      if !sameColumns {
        // By bytes (`columnKey`): Swift's strings took `café` for a decomposed column of that
        // name, and the insert failed.
        let missing = row.names.filter { !columns.contains(Self.columnKey($0)) }
        if bounded,
          let problem = Self.wideningProblem(
            table: table, existing: columns.count, missing: missing.count, creating: columns.isEmpty)
        {
          throw problem
        }
        if let problem = missing.lazy.compactMap({ Self.rowIDNameProblem($0, table: table) }).first {
          throw problem
        }
        if !missing.isEmpty || (!keyIndexed && key != nil) { changedSchema = true }
        if columns.isEmpty {
          let list = row.names.map(Self.quoted).joined(separator: ", ")
          try db.execute(sql: "CREATE TABLE IF NOT EXISTS \"\(table)\" (\(list))")
          columns.formUnion(row.names.map(Self.columnKey))
        } else {
          // The keys were checked to name distinct columns: each missing one is added once.
          for name in missing {
            do {
              try db.execute(sql: "ALTER TABLE \"\(table)\" ADD COLUMN \(Self.quoted(name))")
            } catch let error as DatabaseError where error.message?.contains("missing datatype") == true {
              // A STRICT table (made by the user) takes a column only with a type: ANY keeps every
              // value as given, as an untyped column does.
              try db.execute(sql: "ALTER TABLE \"\(table)\" ADD COLUMN \(Self.quoted(name)) ANY")
            }
            columns.insert(Self.columnKey(name))
          }
        }
        if !keyIndexed, let key {
          // After the first row's columns were added: the key's columns exist now.
          try makeKeyIndex(key, table: table, in: db)
          keyIndexed = true
        }
        // (The statements held here stay valid when the cache lets go of them.)
        if prepared.admit(row.names, table: table) { db.clearSchemaCache() }
        lastStatement = try db.cachedStatement(
          sql: insertSQL(table: table, names: row.names, rows: 1, key: key))
        lastGroupStatement = nil
        lastNames = row.names
      }
      let perStatement = min(rowsPerStatement, variableLimit / max(row.names.count, 1))
      var end = index + 1
      while end < rows.endIndex, end - index < perStatement, rows[end].names == row.names { end += 1 }
      if perStatement > 1, end - index == perStatement {
        if lastGroupStatement == nil {
          lastGroupStatement = try db.cachedStatement(
            sql: insertSQL(table: table, names: row.names, rows: perStatement, key: key))
        }
        do {
          try insert(rows[index..<end], with: lastGroupStatement!, in: db)
        } catch let error as DatabaseError where updatesExisting(after: error, key: key, in: db) {
          // A row of the group may update a row whose other columns are NOT NULL: each alone.
          for one in index..<end {
            try insertOrUpdate(rows[one...one], with: lastStatement!, into: table, key: key, in: db)
          }
        }
        index = end
      } else {
        try insertOrUpdate(rows[index...index], with: lastStatement!, into: table, key: key, in: db)
        index += 1
      }
    }
    let after = changedSchema ? try Int.fetchOne(db, sql: "PRAGMA schema_version") ?? -1 : version
    return KnownTable(columns: columns, schemaVersion: after)
  }

  /// Makes `key` unique in `table`: a unique index (or primary key) on exactly its columns serves
  /// as it is; else the action makes its index `<table>:key`. An index of that name on other
  /// columns (another rule's key, or this rule's before an edit) fails permanently, as does a table
  /// whose rows share a key already: each a ``KeyIndexError``, which fails every row of its batch.
  static func makeKeyIndex(_ key: RowKey, table: String, in db: Database) throws {
    let wanted = key.folded
    let own = RowKey.indexName(table: table)
    let list = key.names.map { "'\($0)'" }.joined(separator: ", ")
    /// The index's columns as the table spells them; an expression (`lower(site)`), which has no
    /// name, as itself, so that such an index never passes for one on the key's columns.
    func columns(of index: String) throws -> [String] {
      try Row.fetchAll(db, sql: "PRAGMA index_info(\(quoted(index)))").map {
        $0["name"] as String? ?? "<expression>"
      }
    }
    for index in try Row.fetchAll(db, sql: "PRAGMA index_list(\"\(table)\")") {
      // A partial index (`WHERE ...`) keeps only some rows unique.
      guard let name = index["name"] as String?, (index["unique"] as Int?) == 1,
        (index["partial"] as Int?) != 1
      else { continue }
      let indexed = try columns(of: name)
      if Set(indexed.map(folded)) == wanted { return }
      if name.isExactly(own) {
        throw KeyIndexError(
          message:
            "table '\(table)' is keyed by (\(indexed.joined(separator: ", "))) (its index \(quoted(own))), not by this action's key \(list): another rule writes it with another key, or this rule's key changed; drop the index (DROP INDEX \(quoted(own))) to key it anew, or write another table"
        )
      }
    }
    do {
      try db.execute(
        sql: "CREATE UNIQUE INDEX \(quoted(own)) ON \"\(table)\" ("
          + key.names.map(quoted).joined(separator: ", ") + ")")
    } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
      throw KeyIndexError(
        message:
          "cannot make \(list) the key of table '\(table)': rows in it share a key already (\(error.message ?? "constraint failed")); remove the duplicates or write another table"
      )
    }
  }

  /// The key cannot be made unique in the table: every row of the batch fails with it, at once
  /// (row by row, each row made SQLite try the index over the whole table again).
  struct KeyIndexError: Error {
    var message: String
  }

  /// The last ``KeyIndexError`` and when (epoch ms): batches in the next ``keyProblemHoldMs``
  /// fail with it without asking SQLite again (a unique index over a large table takes seconds).
  let keyProblem = Mutex<(message: String, atMs: Int)?>(nil)
  /// How long a ``KeyIndexError`` is taken as still true.
  static let keyProblemHoldMs = 10_000

  /// The most columns a table may reach by keys the action adds (a table made wider by hand keeps
  /// its columns; only adding stops).
  public static let automaticColumnLimit = 256
  /// The most columns one result may add to an existing table.
  public static let newColumnsPerResult = 32

  /// Why a result may not add `missing` columns to a table of `existing` ones, or nil.
  /// Why the action cannot make a column `name` in `table`: a column named as SQLite's row id
  /// (`rowid`, `oid`, `_rowid_`, any case) takes the name from it for every reader (`SELECT rowid`
  /// gives the column: NULL in every other row), and readers that follow a table by its row id
  /// lose their place. A table made with such a column (`oid` of SNMP data) takes it as any other.
  static func rowIDNameProblem(_ name: String, table: String) -> ActionError? {
    guard isRowIDName(name) else { return nil }
    return ActionError(
      .permanent,
      "key '\(name)' would make a column of table '\(table)' named as SQLite's row id (rowid, oid, _rowid_), "
        + "which hides it from every reader; a table made with that column takes it")
  }

  /// Whether `name` is one of SQLite's names for the row id, in any case.
  static func isRowIDName(_ name: String) -> Bool { ["rowid", "oid", "_rowid_"].contains(name.lowercased()) }

  static func wideningProblem(table: String, existing: Int, missing: Int, creating: Bool) -> ActionError? {
    if missing == 0 { return nil }
    if existing + missing > automaticColumnLimit {
      return ActionError(
        .permanent,
        "the result's \(missing) new key(s) would take table '\(table)' to \(existing + missing) columns; automatic columns stop at \(automaticColumnLimit) (name the columns to write with \"columns\")"
      )
    }
    if !creating, missing > newColumnsPerResult {
      return ActionError(
        .permanent,
        "the result has \(missing) keys table '\(table)' has no column for; one result adds at most \(newColumnsPerResult) (name the columns to write with \"columns\")"
      )
    }
    return nil
  }

  static func actionError(_ error: any Error, _ what: String) -> ActionError {
    if let error = error as? ActionError { return error }
    if let error = error as? KeyIndexError { return ActionError(.permanent, error.message) }
    guard let databaseError = error as? DatabaseError else {
      return ActionError(.transient, "\(what): \(error)")
    }
    let code = databaseError.resultCode.primaryResultCode
    let transient: [ResultCode] = [
      .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_PROTOCOL, .SQLITE_NOMEM,
    ]
    // The message and the code's number: the code's own description repeats the message.
    let message =
      "\(what): \(databaseError.message ?? "\(databaseError.resultCode)") (SQLite code \(code.rawValue))"
    // SQLite says only "unable to open database file" when the process is out of descriptors,
    // which may pass (others close theirs), where a missing permission does not.
    if code == .SQLITE_CANTOPEN, let (open, limit) = DescriptorUse.nearLimit() {
      return ActionError(
        .transient, message + ": the process is out of descriptors (\(open) open of its limit \(limit))")
    }
    return ActionError(transient.contains(code) ? .transient : .permanent, message)
  }
}

/// The process's open descriptors against its limit.
enum DescriptorUse {
  /// The descriptors open and the soft limit, when fewer than 16 are left; nil otherwise (or when
  /// it cannot tell). Counts `/proc/self/fd`, only on a failure: a few milliseconds with 20,000 open.
  static func nearLimit() -> (open: Int, limit: Int)? {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0,
      limit.rlim_cur < rlim_t(Int.max)
    else { return nil }
    let most = Int(limit.rlim_cur)
    guard let folder = opendir("/proc/self/fd") else {
      // Not even one left to list them with.
      return errno == EMFILE || errno == ENFILE ? (most, most) : nil
    }
    var open = -3  // `.`, `..` and the listing's own descriptor
    while readdir(folder) != nil { open += 1 }
    closedir(folder)
    return open + 16 >= most ? (open, most) : nil
  }
}
