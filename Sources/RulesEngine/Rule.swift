import IoTSQL
import Synchronization

/// What an action factory is told about the rule it builds an action for.
public struct ActionBuildContext: Sendable {
  /// The rule's name.
  public var ruleName: String
  /// The rule's SQL version (templates compile for it).
  public var version: SQLVersion
  /// The rule's SET variable names (templates may read them).
  public var variableNames: [String]
  /// True when building an error action (it receives error records).
  public var isErrorAction: Bool
  /// The rule's FROM filter (empty without FROM, or when the SQL did not compile).
  public var topicFilter: String
  /// The rule's SQL as written (empty when unknown).
  public var sql: String
  /// The path of the rule file being loaded, as given (empty when unknown): an archive whose root
  /// holds its folder is warned about.
  public var ruleFile: String

  /// Creates a context.
  public init(
    ruleName: String, version: SQLVersion, variableNames: [String], isErrorAction: Bool = false,
    topicFilter: String = "", sql: String = "", ruleFile: String = ""
  ) {
    self.ruleName = ruleName
    self.version = version
    self.variableNames = variableNames
    self.isErrorAction = isErrorAction
    self.topicFilter = topicFilter
    self.sql = sql
    self.ruleFile = ruleFile
  }
}

/// An invalid action configuration, with where in the rule file.
public struct ActionConfigurationError: Error, Sendable {
  /// What is wrong.
  public var message: String
  /// Where, when known (else the action's key).
  public var position: FilePosition?

  /// The further problems found in the same action's configuration, in the order they were
  /// found: `iotrules check` reports them all at once.
  public var further: [ActionConfigurationError] = []

  /// Warnings about the settings that could be read although the action could not be built (a
  /// `database` beginning with `~` beside a bad `key`): the loader reports them beside the errors,
  /// so one `iotrules check` shows everything to fix.
  public var warnings: [ActionConfigurationWarning] = []

  /// Creates an error.
  public init(_ message: String, at position: FilePosition? = nil) {
    self.message = message
    self.position = position
  }

  /// This error and the further ones.
  public var all: [ActionConfigurationError] {
    var first = self
    first.further = []
    return [first] + further
  }
}

/// Builds actions from their configuration: the `Actions` module's `ActionFactory` implements it.
public protocol ActionBuilding: Sendable {
  /// Builds the action of `kind` from its configuration object (without `retry` and `errorAction`,
  /// which the loader reads).
  func makeAction(kind: String, configuration: RuleNode, context: ActionBuildContext)
    throws(ActionConfigurationError) -> any Action
}

/// An action of a rule with its retry policy and error action, and the lane that keeps its order.
public final class ConfiguredAction: Sendable {
  /// The action.
  public let action: any Action
  /// How transient failures are retried.
  public let retry: RetryPolicy
  /// Where this action's failures go first.
  public let errorAction: ConfiguredAction?
  /// `sqlite[0]`, `file[1]`, `errorAction`: a name for metrics and logs.
  public let label: String
  let counters: ActionCounters
  let lane: ActionLane
  /// Used as an error action: until when (the engine clock's monotonic ms) records skip it after it failed
  /// transiently through its whole retry schedule, and that failure.
  let restingUntil = Mutex<(untilMs: Int, failure: String)?>(nil)

  /// Creates a configured action.
  public init(
    action: any Action, retry: RetryPolicy, errorAction: ConfiguredAction?, ruleName: String, label: String
  ) {
    self.action = action
    self.retry = retry
    self.errorAction = errorAction
    self.label = label
    self.counters = CounterStore.shared.action(rule: ruleName, label: label)
    self.lane = ActionLane()
  }

  /// This action and its error action, for start and shutdown.
  public var allActions: [any Action] {
    [action] + (errorAction?.allActions ?? [])
  }
}

/// A compiled, validated rule.
public final class Rule: Sendable {
  /// The rule name (`[a-zA-Z0-9_]{1,128}`).
  public let name: String
  /// The description.
  public let description: String
  /// The compiled SQL.
  public let program: Program
  /// The FROM filter; empty for a rule without FROM, which only Basic Ingest reaches.
  public var topicFilter: String { program.topicFilter ?? "" }
  /// The actions, in file order.
  public let actions: [ConfiguredAction]
  /// The rule's error action.
  public let errorAction: ConfiguredAction?
  /// Disabled rules are loaded and checked but never run.
  public let disabled: Bool
  /// True when some action reads the result's payload bytes (else the VM does not write them out).
  public let readsPayloadBytes: Bool
  /// True when some action reads the result's value (SQLite's): the VM then builds it, so that
  /// beside an action that reads the bytes, the value is not parsed back out of them.
  public let readsResultValue: Bool
  /// The file it came from.
  public let file: String
  /// A fingerprint of the file's bytes, to keep running instances when a reload finds no change.
  public let fingerprint: FileFingerprint
  /// Warnings of the SQL (a call that is always Undefined, an unquoted FROM...), at file positions.
  public let warnings: [RuleDiagnostic]
  /// Where the name is written: the `ruleName` value, or 1:1 when the name is the file's.
  public let namePosition: FilePosition
  /// The file position of each place of the SQL its program's instructions come from, by byte
  /// offset (not of every byte: 16 bytes a byte of SQL, kept as long as the rule runs).
  let sqlPositions: SQLPositions
  let counters: RuleCounters
  /// Set when the rule first read fields of a payload that is not JSON (it is warned of once).
  let warnedNonJSON = Atomic<Bool>(false)
  /// When a stopped evaluation was last logged (monotonic nanoseconds; 0: never).
  let loggedEvaluationLimit = Atomic<UInt64>(0)
  /// When a regular-expression match of this rule stopped by its budget was last logged, and how
  /// many have been since.
  let loggedRegexOverrun = Mutex<(atNanoseconds: UInt64?, since: Int)>((nil, 0))

  /// Where `location` of the SQL is in the rule's file (`rules/big.yaml:6:10`), or in the SQL
  /// when that is not known (`4:8 of the SQL`).
  func sqlPlace(_ location: SourceLocation) -> String {
    sqlPositions.position(ofOffset: location.offset).map { "\(file):\($0)" } ?? "\(location) of the SQL"
  }

  /// Creates a rule.
  public init(
    name: String, description: String, disabled: Bool, program: Program,
    actions: [ConfiguredAction], errorAction: ConfiguredAction?, file: String, fingerprint: FileFingerprint,
    warnings: [RuleDiagnostic] = [], namePosition: FilePosition = FilePosition(line: 1, column: 1),
    sqlPositions: [Int: FilePosition] = [:]
  ) {
    self.warnings = warnings
    self.sqlPositions = SQLPositions(sqlPositions)
    self.namePosition = namePosition
    self.name = name
    self.description = description
    self.disabled = disabled
    self.program = program
    self.actions = actions
    self.readsPayloadBytes = actions.contains { $0.action.readsPayloadBytes }
    self.readsResultValue = actions.contains { !$0.action.readsPayloadBytes }
    self.errorAction = errorAction
    self.file = file
    self.fingerprint = fingerprint
    self.counters = CounterStore.shared.rule(name)
  }

  /// Runs the rule's program over a message with `machine`. A method of the rule, so the program
  /// is read from the rule in place: read at the caller, it was copied (five references retained and
  /// released) for every message.
  func evaluate(_ context: EvaluationContext, using machine: inout VirtualMachine) -> Evaluation? {
    machine.evaluate(
      program, context: context, serializesPayload: readsPayloadBytes, keepsValue: readsResultValue)
  }

  /// Every action instance of the rule, error actions included.
  public var allActions: [any Action] {
    actions.flatMap(\.allActions) + (errorAction?.allActions ?? [])
  }
}

/// The metric names (Prometheus style).
public enum MetricNames {
  /// Messages whose topic matched the rule's FROM.
  public static let ruleMatched = "iotrules_rule_matched_total"
  /// Messages that passed WHERE.
  public static let rulePassed = "iotrules_rule_passed_total"
  /// Messages whose fields the rule read although the payload is not JSON (AWS's `ParseError`), and
  /// messages whose evaluation was stopped by ``EvaluationLimits``.
  public static let ruleEvaluationErrors = "iotrules_rule_evaluation_errors_total"
  /// Regular-expression matches stopped by their step budget (the call was Undefined), all rules.
  public static let regexBudgetOverruns = "iotrules_regex_budget_overruns_total"
  /// Results an action wrote.
  public static let actionSucceeded = "iotrules_action_succeeded_total"
  /// Results an attempt failed for.
  public static let actionFailed = "iotrules_action_failed_total"
  /// Results sent again after a transient failure.
  public static let actionRetried = "iotrules_action_retried_total"
  /// Failures handed to an error action.
  public static let actionErrorPath = "iotrules_action_error_path_total"
  /// Failures written to the dead-letter file.
  public static let actionDeadLettered = "iotrules_action_dead_lettered_total"
  /// Messages received from sources.
  public static let messagesReceived = "iotrules_messages_received_total"
  /// Replay lines skipped as malformed (reported with their line numbers in the log).
  public static let malformedLines = "iotrules_replay_malformed_lines_total"
  /// Records a source refused before any rule saw them (logged with their place).
  public static let messagesRefused = "iotrules_source_records_refused_total"
  /// Messages addressed to one rule that does not take them (AWS's `RuleNotFound`).
  public static let messagesForMissingRules = "iotrules_messages_no_rule_total"
  /// Messages acknowledged done.
  public static let messagesAcknowledged = "iotrules_messages_acknowledged_total"
  /// Messages that could not be kept safe (acknowledged failed).
  public static let messagesFailed = "iotrules_messages_failed_total"
  /// Messages in flight.
  public static let queueDepth = "iotrules_queue_depth"
  /// Reloads of the rule set, by outcome.
  public static let ruleReloads = "iotrules_rule_reloads_total"
  /// Rule files whose latest version failed to load.
  public static let ruleFilesFailing = "iotrules_rule_files_failing"
  /// Time from intake to acknowledgement.
  public static let latency = "iotrules_message_latency_seconds"
}

/// A rule's ``Rule/sqlPositions``: offset, line and column of each place as 32-bit numbers, sorted by
/// offset (12 bytes a place and one array; a dictionary took some 260 bytes a rule, 2.6 MB of
/// 10,000 rules' resident memory).
struct SQLPositions: Sendable {
  private let entries: [UInt32]

  /// The places of `positions`; one whose numbers do not fit 32 bits (no rule file of at most
  /// 1 MiB has one) is left out, and said by its place in the SQL instead.
  init(_ positions: [Int: FilePosition]) {
    var entries: [UInt32] = []
    entries.reserveCapacity(3 * positions.count)
    for (offset, position) in positions.sorted(by: { $0.key < $1.key }) {
      guard let offset = UInt32(exactly: offset), let line = UInt32(exactly: position.line),
        let column = UInt32(exactly: position.column)
      else { continue }
      entries += [offset, line, column]
    }
    self.entries = entries
  }

  /// The file position of the SQL's byte `offset`, when it is one of the places.
  func position(ofOffset offset: Int) -> FilePosition? {
    guard let wanted = UInt32(exactly: offset) else { return nil }
    var (low, high) = (0, entries.count / 3)
    while low < high {
      let middle = (low + high) / 2
      let found = entries[3 * middle]
      if found == wanted {
        return FilePosition(line: Int(entries[3 * middle + 1]), column: Int(entries[3 * middle + 2]))
      }
      if found < wanted { low = middle + 1 } else { high = middle }
    }
    return nil
  }
}
