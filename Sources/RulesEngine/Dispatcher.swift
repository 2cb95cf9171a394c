import Foundation
import IoTSQL
import Logging
import Synchronization

/// Counts kept by the dispatcher for the summary line on exit.
public struct DispatchStatistics: Sendable, Equatable {
  /// Messages delivered by sources.
  public var received = 0
  /// Rule matches (topic matched FROM).
  public var matched = 0
  /// Rule results that passed WHERE.
  public var passed = 0
  /// Messages acknowledged `.done`.
  public var acknowledged = 0
  /// Messages acknowledged `.failed` (kept by the source).
  public var failed = 0
  /// Results actions wrote.
  public var actionsSucceeded = 0
  /// Action attempts that failed.
  public var actionFailures = 0
  /// Retries started.
  public var retries = 0
  /// Records an error action took.
  public var errorRecords = 0
  /// Records written to the dead-letter file.
  public var deadLettered = 0
  /// Evaluations stopped by their limits (``EvaluationLimits``): a rule that gave no result.
  public var evaluationsStopped = 0
  /// Messages for one rule only (a redriven error record's `ruleName`, a Basic Ingest topic's rule
  /// name) that no loaded rule of that name took, and Basic Ingest topics naming no rule: they went
  /// to no rule.
  public var forMissingRules = 0

  /// Creates zeroed statistics.
  public init() {}
}

/// One result waiting for one action. (Its lane knows the action; results of one topic are
/// performed one at a time, in arrival order: `Dispatcher.perform(_:on:)` groups them by topic.)
/// One reference, to the rule's tracker, which holds the input: a job is copied into the worker's
/// list, the lane's queue and its batch, and each copy of the input's five references cost five
/// atomic increments that the rule's actions, on other threads, contend for.
struct ActionJob: Sendable {
  let tracker: RuleTracker
  /// What the action receives.
  var input: ActionInput { tracker.input }
}

/// The queue of one action: jobs are processed in arrival order, per key (topic) one part at a
/// time, different keys concurrently and independently; a batch action takes everything queued at once. Held inline by its
/// `ConfiguredAction` (no object of its own for each of 10,000 rules).
struct ActionLane: ~Copyable, Sendable {
  /// The most results a batch action takes at once. Well above the in-flight default, so that the
  /// in-flight bound (`--max-in-flight`), not this, sets what one fsync round or one SQLite
  /// transaction covers.
  static let maxBatch = 4096
  let state = Mutex<(queue: [ActionJob], running: Bool)>(([], false))
  /// A per-result action's topics being performed, each with the jobs waiting behind its running
  /// part (`hand`): a topic slow to answer holds only its own results. (The lane waited for the
  /// whole of each batch, so one webhook request hanging for its timeout held every other topic.)
  let topics = Mutex<[ExactText: TopicQueue]>([:])

  /// The jobs waiting behind a topic's running part, and the wait of a part gathering more
  /// (``GroupGathering``): how many results and bytes of results it still wants, and its sleep,
  /// which `hand` ends when either comes.
  struct TopicQueue {
    var jobs: [ActionJob] = []
    var gathering: (count: Int, bytes: Int, sleep: Task<Void, Never>)?
  }

  /// How many of `jobs`, from the first, fit in `count` results and `bytes` (at least one, when
  /// `atLeastOne`: a result larger than a request goes alone).
  static func fitting(_ jobs: [ActionJob], _ count: Int, _ bytes: Int, atLeastOne: Bool) -> Int {
    var taken = 0
    var size = 0
    for job in jobs {
      let next = gatheredBytes(job)
      guard taken < count, size + next <= bytes || (atLeastOne && taken == 0) else { break }
      taken += 1
      size += next
    }
    return taken
  }

  /// A result's share of a gathered request: its payload and a separator.
  static func gatheredBytes(_ job: ActionJob) -> Int { job.input.evaluation.payload.count &+ 1 }

  /// The shares of `jobs`.
  static func gatheredBytes(_ jobs: [ActionJob]) -> Int { jobs.reduce(0) { $0 &+ gatheredBytes($1) } }
  /// The latest batch's error-path work: the next batch's starts after it, so error records come
  /// out in the lane's order even when an error action is slow.
  let failureWork = Mutex<Task<Void, Never>?>(nil)

  /// Runs `work` once the error-path work of the batches before has finished.
  func afterEarlierFailures(_ work: @escaping @Sendable () async -> Void) {
    failureWork.withLock { last in
      let previous = last
      last = Task {
        await previous?.value
        await work()
      }
    }
  }

  func enqueue(_ jobs: [ActionJob], of configured: ConfiguredAction, dispatcher: Dispatcher) {
    let start = state.withLock { state -> Bool in
      if state.queue.isEmpty { state.queue = jobs } else { state.queue.append(contentsOf: jobs) }
      if state.running { return false }
      state.running = true
      return true
    }
    if start {
      Task { await configured.lane.run(dispatcher: dispatcher, configured: configured) }
    }
  }

  /// The next jobs to perform (at most `maxBatch`); empty when there are none, and then, on the
  /// second empty round in a row, the lane is marked stopped (`stop` is set).
  private func take(idleRounds: Int, stop: inout Bool) -> [ActionJob] {
    state.withLock { state -> [ActionJob] in
      if state.queue.isEmpty {
        // Stay one scheduling round before stopping: under a steady stream this saves starting
        // a task per message.
        if idleRounds > 0 {
          state.running = false
          stop = true
        }
        return []
      }
      if state.queue.count <= Self.maxBatch {
        defer { state.queue = [] }
        return state.queue
      }
      let batch = Array(state.queue.prefix(Self.maxBatch))
      state.queue.removeFirst(Self.maxBatch)
      return batch
    }
  }

  /// Nothing queued, nothing running.
  var isIdle: Bool {
    state.withLock { !$0.running && $0.queue.isEmpty } && topics.withLock { $0.isEmpty }
  }

  func run(dispatcher: Dispatcher, configured: ConfiguredAction) async {
    await dispatcher.waitForPredecessor(of: configured)
    if let pipelined = configured.action as? any PipelinedBatchAction {
      await runPipelined(pipelined, dispatcher: dispatcher, configured: configured)
      return
    }
    let perTopic = !(configured.action is any BatchAction)
    var idleRounds = 0
    while true {
      var stop = false
      let batch = take(idleRounds: idleRounds, stop: &stop)
      if stop { return }
      if batch.isEmpty {
        idleRounds += 1
        await Task.yield()
        continue
      }
      idleRounds = 0
      if perTopic {
        hand(batch, dispatcher: dispatcher, configured: configured)
      } else {
        await dispatcher.process(batch, on: configured)
      }
    }
  }

  /// Hands a per-result action's batch to its topics: each topic's jobs run after that topic's
  /// earlier ones (one part at a time, in arrival order), topics independently of each other.
  private func hand(_ batch: [ActionJob], dispatcher: Dispatcher, configured: ConfiguredAction) {
    var groups: [ExactText: [ActionJob]] = [:]
    var order: [ExactText] = []
    // By the topic's bytes, as `perform` groups them.
    for job in batch {
      let key = ExactText(job.input.message.topic)
      if groups[key] == nil { order.append(key) }
      groups[key, default: []].append(job)
    }
    for key in order {
      let jobs = groups[key]!
      let starts = topics.withLock { topics -> Bool in
        if topics[key] != nil {
          topics[key]!.jobs.append(contentsOf: jobs)
          // A part gathering results has enough now: it goes without waiting out its window.
          if var gathering = topics[key]!.gathering {
            gathering.count -= jobs.count
            gathering.bytes -= Self.gatheredBytes(jobs)
            topics[key]!.gathering = gathering
            if gathering.count <= 0 || gathering.bytes <= 0 { gathering.sleep.cancel() }
          }
          return false
        }
        topics[key] = TopicQueue()
        return true
      }
      if starts {
        Task { await configured.lane.runTopic(key, jobs, dispatcher: dispatcher, configured: configured) }
      }
    }
  }

  /// Performs one topic's jobs, then those queued for it meanwhile, until none is left.
  private func runTopic(
    _ key: ExactText, _ first: [ActionJob], dispatcher: Dispatcher, configured: ConfiguredAction
  ) async {
    var jobs = first
    let grouped = configured.action as? any KeyedGroupAction
    while !jobs.isEmpty {
      let gathering = grouped?.gathering
      if let grouped, let gathering {
        // A part is one request's worth: what does not fit waits for the next part (a backlog's
        // last result that passed `maxBytes` went alone at once, not waiting for others).
        let fitting = Self.fitting(jobs, gathering.maxCount, gathering.maxBytes, atLeastOne: true)
        if fitting < jobs.count {
          let rest = jobs[fitting...]
          jobs.removeSubrange(fitting...)
          topics.withLock { $0[key, default: TopicQueue()].jobs.insert(contentsOf: rest, at: 0) }
        } else if jobs.count < gathering.maxCount {
          await gather(
            key, onto: &jobs, gathering, clock: dispatcher.clock,
            goesOn: { !dispatcher.isStopping && grouped.gathering != nil })
        }
      }
      await dispatcher.process(
        jobs, on: configured, holdingForWaits: true, gathered: gathering != nil)
      jobs = topics.withLock { topics -> [ActionJob] in
        let next = topics[key]?.jobs ?? []
        if next.isEmpty { topics[key] = nil } else { topics[key]!.jobs = [] }
        return next
      }
    }
  }

  /// Waits until `jobs` and the topic's jobs queued behind them number `gathering.maxCount` or
  /// fill `gathering.maxBytes`, or the oldest has waited `gathering.windowMs` since the dispatcher
  /// took its message, then moves
  /// the queued ones that fit onto `jobs` (the rest wait for the next part). The
  /// wait ends too once `goesOn` says no: the daemon stopping, the action hurried (the run ending,
  /// its rule replaced). (Handed over one part at a time, a webhook's batch held its topic's later
  /// results until it was answered: the first result after a pause went alone after the whole
  /// window, and the next waited twice as long.)
  private func gather(
    _ key: ExactText, onto jobs: inout [ActionJob], _ gathering: GroupGathering, clock: any EngineClock,
    goesOn: () -> Bool
  ) async {
    let deadline = jobs[0].tracker.startNanoseconds &+ UInt64(max(gathering.windowMs, 0)) &* 1_000_000
    let wanted = gathering.maxCount - jobs.count
    let wantedBytes = gathering.maxBytes - Self.gatheredBytes(jobs)
    // What the jobs queued behind leave wanted, or nil when they are enough.
    func left(_ queue: TopicQueue?) -> (count: Int, bytes: Int)? {
      let jobs = queue?.jobs ?? []
      let left = (wanted - jobs.count, wantedBytes - Self.gatheredBytes(jobs))
      return left.0 <= 0 || left.1 <= 0 ? nil : left
    }
    var now = clock.monotonicNanoseconds()
    // In sleeps of at most a quarter second, so that a stop does not wait out a long window.
    while now < deadline, wantedBytes > 0, goesOn() {
      let milliseconds = Int(min((deadline - now + 999_999) / 1_000_000, 250))
      let sleep = Task<Void, Never> { _ = try? await clock.sleep(milliseconds: milliseconds) }
      let enough = topics.withLock { topics -> Bool in
        guard let (count, bytes) = left(topics[key]) else { return true }
        topics[key, default: TopicQueue()].gathering = (count, bytes, sleep)
        return false
      }
      if enough { sleep.cancel() }
      await sleep.value
      if enough || topics.withLock({ left($0[key]) == nil }) { break }
      now = clock.monotonicNanoseconds()
    }
    jobs += topics.withLock { topics -> [ActionJob] in
      guard var queue = topics[key] else { return [] }
      queue.gathering = nil
      // As many as fit: the result that would pass `maxBytes` opens the next part (taken, it went
      // alone in a request of its own at the part's end).
      let count = Self.fitting(queue.jobs, wanted, wantedBytes, atLeastOne: false)
      let taken = Array(queue.jobs.prefix(count))
      queue.jobs.removeFirst(count)
      topics[key] = queue
      return taken
    }
  }

  /// Up to this many batches of a pipelined action are out at once.
  static let maxBatchesInFlight = 8

  /// A pipelined action's lane: batches are submitted in order without waiting for the ones before
  /// (up to `maxBatchesInFlight`), and their results are taken in the same order.
  private func runPipelined(
    _ action: any PipelinedBatchAction, dispatcher: Dispatcher, configured: ConfiguredAction
  ) async {
    var outstanding: [(batch: [ActionJob], results: Task<[ActionError?], Never>)] = []
    var idleRounds = 0
    while true {
      var stop = false
      let batch = outstanding.count < Self.maxBatchesInFlight ? take(idleRounds: idleRounds, stop: &stop) : []
      if !batch.isEmpty {
        idleRounds = 0
        // Once stopping, after this action failed transiently, later batches are not submitted
        // (each would wait out a delivery timeout): they take their error paths, in order.
        if dispatcher.isStopping, let skipped = dispatcher.skippedAtStop(configured) {
          let results = [ActionError?](repeating: skipped, count: batch.count)
          outstanding.append((batch, Task { results }))
          continue
        }
        let wait = action.submitBatch(batch.map(\.input))
        outstanding.append((batch, Task { await wait() }))
        continue
      }
      if let oldest = outstanding.first {
        // Nothing more to submit now (or enough out): the oldest batch's results, then look again.
        // (`take` stops the lane only after an empty round with nothing out, so none is left behind.)
        outstanding.removeFirst()
        let results = await oldest.results.value
        if dispatcher.isStopping { dispatcher.noteAtStop(results, configured) }
        dispatcher.finish(oldest.batch, results: results, on: configured)
        continue
      }
      if stop { return }
      idleRounds += 1
      await Task.yield()
    }
  }
}

/// Tracks the actions of one rule for one message. A message that one rule with actions took (the
/// common case) has this tracker alone; with more such rules, their trackers share a
/// `MessageTracker` that counts them.
final class RuleTracker: ActionInput, @unchecked Sendable {
  // Unchecked: `group` is written once before any job is queued (see there); the rest is `let`s
  // and a Mutex.
  let rule: Rule
  /// The result every action of the rule receives: the tracker itself.
  var input: ActionInput { self }
  let snapshot: RuleSet
  let startNanoseconds: UInt64
  /// The message's tracker when other rules with actions took it too. Set by `accept` once it
  /// knows every rule that took the message, before any job of it is queued (the lane's lock
  /// publishes it to the threads that read it).
  nonisolated(unsafe) var group: MessageTracker?
  let state: Mutex<(remaining: Int, failures: [(ConfiguredAction, ActionError)], traceID: String?)>

  init(rule: Rule, evaluation: Evaluation, message: Message, snapshot: RuleSet, startNanoseconds: UInt64) {
    self.rule = rule
    self.snapshot = snapshot
    self.startNanoseconds = startNanoseconds
    self.state = Mutex((rule.actions.count, [], nil))
    super.init(ruleName: rule.name, evaluation: evaluation, message: message)
  }

  /// The message's trace id for error records: one per message, made when first asked for.
  var traceID: String {
    if let id = message.traceID { return id }
    if let group { return group.traceID }
    return state.withLock { lazyTraceID(in: &$0.traceID) }
  }

  /// The rule is done: the message is acknowledged now, or once its other rules are.
  func ruleFinished(ok: Bool, dispatcher: Dispatcher) {
    if let done = finished(ok: ok) { dispatcher.finish(CollectionOfOne(done)) }
  }

  /// The rule is done: its message to finish, or nil while other rules still hold it.
  func finished(ok: Bool) -> FinishedMessage? {
    if let group { return group.finished(ok: ok) }
    return FinishedMessage(message: message, ok: ok, snapshot: snapshot, startNanoseconds: startNanoseconds)
  }

  /// Counts one action as finished. When that finishes the rule with failures, returns them: the
  /// caller sends them down their error paths with `Dispatcher.handleFailures` (a lane does so in batch order). When it
  /// finishes the rule's message, adds the message to `finishing`, for the caller to finish with
  /// the others of its batch.
  func completeDeferringFailures(
    _ configured: ConfiguredAction, _ error: ActionError?, finishing: inout [FinishedMessage]
  )
    -> [(ConfiguredAction, ActionError)]?
  {
    let failures = state.withLock { state -> [(ConfiguredAction, ActionError)]? in
      if let error { state.failures.append((configured, error)) }
      state.remaining -= 1
      return state.remaining == 0 ? state.failures : nil
    }
    guard let failures else { return nil }
    if failures.isEmpty {
      if let done = finished(ok: true) { finishing.append(done) }
      return nil
    }
    return failures
  }
}

/// Tracks the rules with actions of one message that more than one such rule took, until it can be
/// acknowledged.
final class MessageTracker: Sendable {
  let message: Message
  let snapshot: RuleSet
  let startNanoseconds: UInt64
  let state: Mutex<(remaining: Int, ok: Bool, traceID: String?)>

  init(message: Message, snapshot: RuleSet, rules: Int, startNanoseconds: UInt64) {
    self.message = message
    self.snapshot = snapshot
    self.startNanoseconds = startNanoseconds
    self.state = Mutex((rules, true, nil))
  }

  var traceID: String {
    if let id = message.traceID { return id }
    return state.withLock { lazyTraceID(in: &$0.traceID) }
  }

  /// One of the message's rules is done: the message to finish when it was the last.
  func finished(ok: Bool) -> FinishedMessage? {
    let done = state.withLock { state -> Bool? in
      state.ok = state.ok && ok
      state.remaining -= 1
      return state.remaining == 0 ? state.ok : nil
    }
    guard let done else { return nil }
    return FinishedMessage(message: message, ok: done, snapshot: snapshot, startNanoseconds: startNanoseconds)
  }
}

/// A message all of whose rules are done, to be counted, acknowledged and released.
struct FinishedMessage {
  let message: Message
  /// Whether every action succeeded or handed its failure off (`.done`), else `.failed`.
  let ok: Bool
  /// The rule set it entered.
  let snapshot: RuleSet
  let startNanoseconds: UInt64
}

/// The trace id kept in `slot`, made there when first asked for.
private func lazyTraceID(in slot: inout String?) -> String {
  if let id = slot { return id }
  let id = RandomUUID.string()
  slot = id
  return id
}

/// Message → matching rules → program → every action of the rule, with bounded in-flight work,
/// ordered lanes per action, retries, error paths and acknowledgement.
///
/// `deliver` suspends while `maxInFlight` messages, or `maxInFlightBytes` of their payloads, are
/// unacknowledged: that is the backpressure a source feels. A message is acknowledged `.done` when every action of every matching rule
/// succeeded or handed its failure to an error path, `.failed` when even the dead-letter file could
/// not take a record.
public final class Dispatcher: Sendable {
  struct SlotState {
    var ruleSet: RuleSet
    var inFlight = 0
    /// The payload bytes of the messages in flight.
    var inFlightBytes = 0
    /// Delivers waiting for room, with their message's payload size.
    var waiters: [(continuation: CheckedContinuation<Void, Never>, bytes: Int)] = []
    var idleWaiters: [CheckedContinuation<Void, Never>] = []
  }

  /// The most messages in flight.
  public let maxInFlight: Int
  /// The most payload bytes in flight; a message larger than this is taken alone.
  public let maxInFlightBytes: Int
  /// Waiting delivers resume when the messages in flight fall to this many...
  let lowWater: Int
  /// ...and their payload bytes to this many.
  let lowWaterBytes: Int
  let slots: Mutex<SlotState>
  let statistics = Mutex(DispatchStatistics())
  /// Idle workers: one per concurrent `accept` at most. A worker's VM keeps its stack and its payload
  /// buffers between messages, and its results list its storage, which a message would otherwise
  /// allocate each time.
  let workers = Mutex<[Worker]>([])

  /// What one `accept` works with.
  struct Worker {
    var vm = VirtualMachine()
    /// The trackers of the rules with actions that took the message being accepted.
    var trackers: [RuleTracker] = []
    /// The jobs of the batch being accepted, by action, in message order.
    var lanes: [(ConfiguredAction, [ActionJob])] = []
    /// The messages of the batch that no rule with actions took.
    var done: [Message] = []

    /// Adds `job` to `configured`'s jobs of this batch. A batch meets few actions (one rule matches
    /// most messages), so the list is searched from its end; past 16 actions the oldest list is
    /// handed to its lane at once (its order within that lane is kept).
    mutating func queue(_ job: ActionJob, for configured: ConfiguredAction, dispatcher: Dispatcher) {
      if let index = lanes.lastIndex(where: { $0.0 === configured }) {
        lanes[index].1.append(job)
        return
      }
      if lanes.count == 16 {
        let (oldest, jobs) = lanes.removeFirst()
        oldest.lane.enqueue(jobs, of: oldest, dispatcher: dispatcher)
      }
      lanes.append((configured, [job]))
    }
  }
  let deadLetter: any DeadLetterSink
  let clock: any EngineClock
  let logger: Logger
  /// Where a failing dead-letter file is reported (the daemon is then unhealthy: it holds messages
  /// it cannot acknowledge) and cleared by the next write that succeeds.
  public let health: Health
  /// Whether the dead-letter problem is reported; changed together with the report, under this
  /// lock, so that a failure and a success racing cannot leave a problem that no later success
  /// clears.
  let deadLetterFailing = Mutex(false)
  /// Set with `deadLetterFailing`, read without a lock: a write that succeeds takes the lock only
  /// after a failure.
  let deadLetterFailingHint = Atomic<Bool>(false)
  /// The component name under which dead-letter failures are reported.
  static let deadLetterComponent = "dead-letter file"

  /// The default of `maxInFlightBytes`: 64 MiB.
  public static let defaultMaxInFlightBytes = 64 << 20

  /// Creates a dispatcher over `ruleSet`.
  public init(
    ruleSet: RuleSet, maxInFlight: Int = 1024, maxInFlightBytes: Int = Dispatcher.defaultMaxInFlightBytes,
    deadLetter: any DeadLetterSink, clock: any EngineClock,
    logger: Logger = Logger(label: "iotrules.dispatch"), health: Health = Health()
  ) {
    self.health = health
    self.maxInFlight = max(1, maxInFlight)
    self.lowWater = self.maxInFlight - max(1, self.maxInFlight / 4)
    self.maxInFlightBytes = max(1, maxInFlightBytes)
    self.lowWaterBytes = self.maxInFlightBytes - max(1, self.maxInFlightBytes / 4)
    self.slots = Mutex(SlotState(ruleSet: ruleSet))
    ruleSet.markCountersLoaded()
    self.deadLetter = deadLetter
    self.clock = clock
    self.logger = logger
  }

  /// The rule set new messages are evaluated against.
  public var ruleSet: RuleSet { slots.withLock { $0.ruleSet } }

  /// The action lanes of replaced rule versions that a new lane of the same destination waits for
  /// before its first batch, by the new one: one topic's results reach the destination in order
  /// across a reload (the new lane went at once, while the old one still worked through its
  /// backlog: 828 older results came after a newer one).
  let predecessors = Mutex<[ObjectIdentifier: Predecessors]>([:])

  /// The lanes of replaced rule versions that may still write, by destination: those replaced
  /// at the coming swap, and those swapped out earlier with work left.
  let retiredLanes = Mutex<[String: [ConfiguredAction]]>([:])

  /// The lanes one lane waits for, and that lane (kept to tell when its entry can go).
  struct Predecessors {
    let owner: ConfiguredAction
    let lanes: [ConfiguredAction]
  }
  /// Whether `predecessors` holds any (read without the lock by every lane that starts).
  let hasPredecessors = Atomic<Bool>(false)

  /// Makes the lanes of `replacement`'s actions wait, before their first batch, for every lane of
  /// a replaced rule version that writes to the same destination and may still write: the ones
  /// `replaced` (until the swap they may still take messages) and those swapped out at earlier
  /// reloads that have work left. Paired by destination alone, whatever the rules' names: a
  /// rename (`mv a.json b.json`), two files swapped, or a version that wrote elsewhere between two
  /// that write here (A1 to `/a`, A2 to `/b`, A3 to `/a` again) each let the new lane overtake a
  /// backlog when versions were paired by name.
  public func handOver(from replaced: [Rule], to replacement: [Rule]) {
    let live = Set(ruleSet.rules.flatMap(\.actions).map(ObjectIdentifier.init))
    retiredLanes.withLock { retired in
      // A lane swapped out at an earlier reload takes no more messages: once idle, it is done.
      retired = retired.compactMapValues { lanes in
        let working = lanes.filter { live.contains(ObjectIdentifier($0)) || !$0.lane.isIdle }
        return working.isEmpty ? nil : working
      }
      for action in replaced.flatMap(\.actions) {
        retired[Self.destination(action), default: []].append(action)
      }
      predecessors.withLock { table in
        table = table.filter { live.contains($0.key) || !$0.value.owner.lane.isIdle }
        for new in replacement.flatMap(\.actions) {
          guard let before = retired[Self.destination(new)] else { continue }
          table[ObjectIdentifier(new)] = Predecessors(owner: new, lanes: before)
        }
        hasPredecessors.store(!table.isEmpty, ordering: .releasing)
      }
    }
  }

  /// What a handover pairs actions by: their kind and resource (a table, a file path template, a
  /// topic, a URL).
  private static func destination(_ configured: ConfiguredAction) -> String {
    "\(configured.action.kind)\u{0}\(configured.action.resource)"
  }

  /// Waits until the lane `configured` replaced (see ``handOver(from:to:)``) has nothing
  /// queued or running.
  func waitForPredecessor(of configured: ConfiguredAction) async {
    guard hasPredecessors.load(ordering: .acquiring) else { return }
    let id = ObjectIdentifier(configured)
    guard var waiting = predecessors.withLock({ $0[id]?.lanes }) else { return }
    // Its first batch comes after the swap, when the lanes it waits for take no more messages: one
    // found idle is done with, and the next looks scan only those still working, less and less
    // often (a thousand rules changed at once, all writing to one table, each scanned the
    // thousand old lanes every millisecond).
    var pauseNanoseconds: UInt64 = 1_000_000
    while true {
      waiting.removeAll { $0.lane.isIdle }
      if waiting.isEmpty { break }
      try? await Task.sleep(nanoseconds: pauseNanoseconds)
      pauseNanoseconds = min(pauseNanoseconds * 2, 20_000_000)
    }
    predecessors.withLock { table in
      table[id] = nil
      hasPredecessors.store(!table.isEmpty, ordering: .releasing)
    }
  }

  /// Swaps the rule set atomically; returns the previous one (wait for `waitUntilIdle()` before
  /// shutting down its retired actions). No message enters the previous set after this returns.
  @discardableResult
  public func swap(to ruleSet: RuleSet) -> RuleSet {
    ruleSet.markCountersLoaded()
    let previous = slots.withLock { state in
      defer { state.ruleSet = ruleSet }
      return state.ruleSet
    }
    ruleSet.replacing(previous)
    previous.retireCounters(keeping: ruleSet)
    return previous
  }

  /// The counts so far.
  public var stats: DispatchStatistics { statistics.withLock { $0 } }

  /// Messages delivered and not yet acknowledged.
  public var inFlight: Int { slots.withLock { $0.inFlight } }

  /// The payload bytes of the messages delivered and not yet acknowledged.
  public var inFlightBytes: Int { slots.withLock { $0.inFlightBytes } }

  /// Takes one message; suspends while the engine is full. Returns once the message is accepted (its
  /// acknowledgement comes later, through `message.acknowledge`).
  public func deliver(_ message: Message) async {
    await acquire(bytes: message.payload.count)
    accept(CollectionOfOne(message))
  }

  /// Takes messages in order, as many at a time as the engine has room for; suspends while it is
  /// full. A source that reads many messages at once (a replay reads a block of lines) saves the
  /// per-message locks and task hops of `deliver`.
  ///
  /// With `stoppingWhenCancelled` (a source that can read its messages again, a file), a
  /// cancelled task (SIGTERM) takes no more once it waited for room: returns how many were taken.
  /// (A block of 256 lines kept being taken, one by one as room came, long after "intake stops".)
  @discardableResult
  public func deliver(batch messages: [Message], stoppingWhenCancelled: Bool = false) async -> Int {
    var next = 0
    while next < messages.count {
      if stoppingWhenCancelled && Task.isCancelled { return next }
      let bytes = messages[next].payload.count
      await acquire(bytes: bytes)
      if stoppingWhenCancelled && Task.isCancelled {
        release(bytes: bytes)
        return next
      }
      let end = next + 1 + tryAcquire(messages[(next + 1)...])
      accept(messages[next..<end])
      next = end
    }
    return messages.count
  }

  /// Takes one message at once when the engine has room, without suspending, and returns true;
  /// returns false, taking nothing, when the engine is full (the caller then uses `deliver`). A
  /// source's own thread uses this to skip a task switch per message.
  public func tryDeliver(_ message: Message) -> Bool {
    guard tryAcquire(bytes: message.payload.count) else { return false }
    accept(CollectionOfOne(message))
    return true
  }

  /// The intake sources hand messages to.
  public var intake: MessageIntake {
    MessageIntake(
      deliver: { message in await self.deliver(message) }, tryDeliver: self.tryDeliver,
      deliverBatch: { messages, stopping in
        await self.deliver(batch: messages, stoppingWhenCancelled: stopping)
      },
      health: health)
  }

  /// Evaluates messages that hold a slot each and queues their actions' work: each action's jobs of
  /// the batch in one go, in message order.
  func accept<Messages: Collection<Message>>(_ messages: Messages) {
    let start = clock.monotonicNanoseconds()
    // Entered under the lock that reads it: a reload swaps under the same lock, so once `swap`
    // returns, every message on the old set has entered it and `waitUntilIdle` waits for them.
    let snapshot = slots.withLock { state in
      state.ruleSet.enter(messages.count)
      return state.ruleSet
    }
    CounterStore.shared.messagesReceived.add(messages.count)
    // Counted before any job is queued: a reading never shows more acknowledged than received.
    statistics.withLock { $0.received += messages.count }
    var worker = workers.withLock { $0.popLast() } ?? Worker()
    defer {
      worker.lanes.removeAll(keepingCapacity: true)
      worker.done.removeAll(keepingCapacity: true)
      let idle = worker
      workers.withLock { $0.append(idle) }
    }
    var matched = 0
    var passed = 0
    // The batch runs on this thread without a pause: this thread's count of stopped matches moves
    // only with its evaluations, and is read only when the process's count moved.
    var threadOverruns = RegexBudget.thisThread
    var processOverruns = RegexBudget.overruns
    for message in messages {
      defer { worker.trackers.removeAll(keepingCapacity: true) }
      let context = message.evaluationContext()
      var passedHere = 0
      let onlyRule = message.onlyRule
      var foundOnlyRule = false
      snapshot.forEachMatch(message.topic) { index in
        let rule = snapshot.rules[index]
        if let onlyRule {
          guard rule.name == onlyRule else { return }
          foundOnlyRule = true
        }
        matched += 1
        rule.counters.matched.add()
        let (result, nonJSON, stopped) = Self.evaluate(rule, context, using: &worker.vm)
        if let nonJSON { noteNonJSON(message, nonJSON, of: rule) }
        if RegexBudget.overruns != processOverruns {
          processOverruns = RegexBudget.overruns
          let overruns = RegexBudget.thisThread - threadOverruns
          threadOverruns += overruns
          if overruns > 0 { noteRegexOverruns(overruns, message, of: rule, now: start) }
        }
        guard let evaluation = result else {
          if stopped,
            let reason = worker.vm.evaluationLimitText(in: rule.program.source, place: rule.sqlPlace)
          {
            noteEvaluationLimit(message, reason, of: rule, now: start)
          }
          return
        }
        rule.counters.passed.add()
        passedHere += 1
        if !rule.actions.isEmpty {
          worker.trackers.append(
            RuleTracker(
              rule: rule, evaluation: evaluation, message: message, snapshot: snapshot,
              startNanoseconds: start))
        }
      }
      passed += passedHere
      if let onlyRule, !foundOnlyRule { noteMissingRule(onlyRule, for: message) }
      // (A record for one rule, said and counted as such above, is no Basic Ingest message too.)
      if passedHere == 0, onlyRule == nil, message.topic.utf8.first == UInt8(ascii: "$") {
        noteUnknownBasicIngest(message.topic, in: snapshot)
      }
      if worker.trackers.isEmpty {
        // Done already; acknowledged once the batch is counted (the last acknowledgement can end
        // a drain).
        worker.done.append(message)
        continue
      }
      if worker.trackers.count > 1 {
        let group = MessageTracker(
          message: message, snapshot: snapshot, rules: worker.trackers.count, startNanoseconds: start)
        for tracker in worker.trackers { tracker.group = group }
      }
      for tracker in worker.trackers {
        for configured in tracker.rule.actions {
          worker.queue(ActionJob(tracker: tracker), for: configured, dispatcher: self)
        }
      }
    }
    statistics.withLock { stats in
      stats.matched += matched
      stats.passed += passed
    }
    noteRegexOverruns(now: start)
    for (configured, jobs) in worker.lanes {
      configured.lane.enqueue(jobs, of: configured, dispatcher: self)
    }
    finishUnmatched(worker.done, snapshot: snapshot, startNanoseconds: start)
  }

  /// Counts, acknowledges `.done` and releases messages that no action took, all of one batch:
  /// one pass, where ``finish(_:)`` would wrap each in a `FinishedMessage` (a reference count on
  /// the message and on the rule set, each of its three passes).
  func finishUnmatched(_ messages: [Message], snapshot: RuleSet, startNanoseconds: UInt64) {
    guard !messages.isEmpty else { return }
    statistics.withLock { $0.acknowledged += messages.count }
    CounterStore.shared.messagesAcknowledged.add(messages.count)
    var latencies = LatencyHistogram.Tally()
    latencies.add(
      nanoseconds: Int64(clamping: clock.monotonicNanoseconds() &- startNanoseconds), count: messages.count)
    var bytes = 0
    for message in messages {
      bytes += message.payloadCount
      message.acknowledge(.done)
    }
    CounterStore.shared.latency.add(latencies)
    snapshot.leave(messages.count)
    release(count: messages.count, bytes: bytes)
  }

  /// `rule`'s evaluation of `context`, with why the payload is not JSON when the rule read fields
  /// of it, and whether ``EvaluationLimits`` stopped it. The machine is read here, through its
  /// `inout`: read from the closure that captures the worker, each read copied the whole machine
  /// (a reference count on each of its buffers, twice a message).
  static func evaluate(_ rule: Rule, _ context: EvaluationContext, using machine: inout VirtualMachine)
    -> (Evaluation?, nonJSON: JSONError?, stopped: Bool)
  {
    let result = rule.evaluate(context, using: &machine)
    return (result, machine.fieldsOfNonJSONError, result == nil && machine.evaluationLimitError != nil)
  }

  /// The regex budget overruns last logged, and when (monotonic nanoseconds).
  let loggedRegexOverruns = Mutex<(count: Int, atNanoseconds: UInt64?)>((0, nil))

  /// Failure lines logged per action and minute; past them failures are only counted, and the next
  /// line logged says how many were not (each is in its error record, the dead-letter file or
  /// `iotrules_action_failed_total`): a failure storm does not flood the log.
  static let failureLinesPerMinute = LogBudget.linesPerMinute
  /// What a budget of lines is kept for: an action of a rule (by label), its failures or its
  /// rounds of retries.
  struct FailureLogKey: Hashable {
    var rule: String
    var action: String
    var retries: Bool
  }
  /// Per rule and action label, failures and retries apart.
  let failureLog = Mutex<[FailureLogKey: LogBudget]>([:])

  /// The failures not logged since each action's last failure line, by rule and action label:
  /// said once the run ends (no later line says them). Error actions' own failures included; rounds
  /// of retries not (each ends in a write or a failure, which is counted).
  public func unloggedFailures() -> [(rule: String, action: String, count: Int)] {
    failureLog.withLock { table in
      table.compactMap { key, budget in
        key.retries || budget.unloggedSinceLastLine == 0
          ? nil : (key.rule, key.action, budget.unloggedSinceLastLine)
      }.sorted { ($0.rule, $0.action) < ($1.rule, $1.action) }
    }
  }

  /// Whether this failure (or, with `retries`, round of retries) of `action` of `rule` is logged,
  /// and how many before it were not.
  func failureLogTurn(rule: String, action: String, retries: Bool = false) -> (logs: Bool, unlogged: Int) {
    let now = clock.monotonicNanoseconds()
    return failureLog.withLock { table in
      table[
        FailureLogKey(rule: rule, action: action, retries: retries), default: LogBudget(startNanoseconds: now)
      ].turn(now: now)
    }
  }

  /// Logs `count` regular-expression matches of `rule`'s evaluation of `message` stopped by their
  /// step budget (their calls were Undefined, which looks like no match or a member missing), with
  /// where: the first at once, then at most one line a minute per rule with the count since.
  func noteRegexOverruns(_ count: Int, _ message: Message, of rule: Rule, now: UInt64) {
    attributedRegexOverruns.add(count, ordering: .relaxed)
    let since = rule.loggedRegexOverrun.withLock { logged -> Int? in
      logged.since += count
      if let last = logged.atNanoseconds, now &- last < 60_000_000_000 { return nil }
      defer { logged = (now, 0) }
      return logged.since
    }
    guard let since else { return }
    logger.warning(
      "rule '\(rule.name)': \(since) regular-expression match(es) stopped by the step budget, the last for the message from \(message.origin) (topic '\(message.loggedTopic)'): those calls were Undefined (a pattern that backtracks without end, or a very long text); counted in \(MetricNames.regexBudgetOverruns) (logged once a minute per rule at most)",
      metadata: ["rule": "\(rule.name)", "topic": "\(message.loggedTopic)", "origin": "\(message.origin)"])
  }

  /// The regular-expression matches stopped by their budget that ``noteRegexOverruns(_:_:of:now:)``
  /// said with their rule: the others (an action's template) are said by
  /// ``noteRegexOverruns(now:)``.
  let attributedRegexOverruns = Atomic<Int>(0)

  /// Logs regular-expression matches stopped by their step budget outside a rule's evaluation (an
  /// action's template; their calls were Undefined): the first at once, then at most one line a
  /// minute with the count since.
  func noteRegexOverruns(now: UInt64) {
    let overruns = RegexBudget.overruns - attributedRegexOverruns.load(ordering: .relaxed)
    guard overruns > 0 else { return }
    let since = loggedRegexOverruns.withLock { logged -> Int? in
      guard overruns > logged.count else { return nil }
      if let last = logged.atNanoseconds, now &- last < 60_000_000_000 { return nil }
      defer { logged = (overruns, now) }
      return overruns - logged.count
    }
    guard let since else { return }
    logger.warning(
      "\(since) regular-expression match(es) stopped by the step budget: those calls were Undefined (a pattern that backtracks without end, or a very long text); counted in \(MetricNames.regexBudgetOverruns)"
    )
  }

  /// Rule names of Basic Ingest topics that named no rule, already logged (at most 1,000).
  let unknownIngestNames = Mutex<Set<String>>([])
  /// Rule names of replayed error records that no rule of that name took, already logged.
  let missingRuleNames = Mutex<Set<String>>([])

  /// Counts a message whose fields `rule` read although its payload is not JSON (AWS's `ParseError`),
  /// and warns the first time for each rule.
  func noteNonJSON(_ message: Message, _ error: JSONError, of rule: Rule) {
    rule.counters.evaluationErrors.add()
    // A flag of the rule's, not a shared set: a stream of binary payloads takes no lock.
    if !rule.warnedNonJSON.load(ordering: .relaxed),
      rule.warnedNonJSON.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
    {
      logger.warning(
        "rule '\(rule.name)' reads fields of a payload that is not JSON (the message from \(message.origin), topic '\(message.loggedTopic)'; in its payload, \(error)): they are Undefined, as in AWS; counted in \(MetricNames.ruleEvaluationErrors) (logged once per rule)",
        metadata: ["rule": "\(rule.name)", "topic": "\(message.loggedTopic)", "origin": "\(message.origin)"]
      )
    }
  }

  /// A message whose evaluation by `rule` was stopped (``EvaluationLimits``): the rule gives it no
  /// result. Counted as the rule's evaluation error and logged, with the message's origin, once a
  /// minute per rule at most (a stream of such messages is one line a minute and a counter).
  func noteEvaluationLimit(_ message: Message, _ reason: String, of rule: Rule, now: UInt64) {
    rule.counters.evaluationErrors.add()
    statistics.withLock { $0.evaluationsStopped += 1 }
    let last = rule.loggedEvaluationLimit.load(ordering: .relaxed)
    guard last == 0 || now &- last >= 60_000_000_000,
      rule.loggedEvaluationLimit.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
    else { return }
    logger.error(
      "rule '\(rule.name)' gave no result for the message from \(message.origin) (topic '\(message.loggedTopic)'): \(reason); counted in \(MetricNames.ruleEvaluationErrors) (logged once a minute per rule at most)",
      metadata: ["rule": "\(rule.name)", "topic": "\(message.loggedTopic)", "origin": "\(message.origin)"]
    )
  }

  /// Logs, once per name, a Basic Ingest message (`$aws/rules/NAME/...`) whose NAME is no rule, or
  /// a disabled one: it goes nowhere, as in AWS, but not without a word (a typo in a device's topic
  /// is otherwise invisible).
  func noteUnknownBasicIngest(_ topic: String, in snapshot: RuleSet) {
    // Logged once per rule name, or per topic that names none.
    let key: String
    let names: Bool
    var disabled = false
    if let ingest = BasicIngest.split(topic) {
      if let index = snapshot.index(named: ingest.rule) {
        // A rule that ran and gave no result (its FROM or WHERE) took the message.
        guard snapshot.rules[index].disabled else { return }
        disabled = true
      }
      (key, names) = (String(ingest.rule), true)
    } else {
      // `$aws/rules/NAME` with no topic after the name, `$aws/rules//x` with no name: as quiet
      // a drop as a name of no rule, and as likely a device's mistake.
      guard BasicIngest.isIngestFilter(topic) else { return }
      (key, names) = (topic, false)
    }
    statistics.withLock { $0.forMissingRules += 1 }
    CounterStore.shared.messagesForMissingRules.add(1)
    switch Self.novelty(key, in: unknownIngestNames) {
    case .seen: break
    case .new:
      logger.warning(
        disabled
          ? "Basic Ingest topic '\(Message.logged(topic: topic))' names rule '\(clipped(key))', which is disabled (ruleDisabled): its messages go to no rule (logged once per name)"
          : names
            ? "Basic Ingest topic '\(Message.logged(topic: topic))' names no rule '\(clipped(key))': its messages go to no rule (logged once per name)"
            : "Basic Ingest topic '\(Message.logged(topic: topic))' is not $aws/rules/<rule>/<topic> (a rule's name, then a topic after it): its messages go to no rule (logged once per topic)"
      )
    case .pastLimit:
      // A device sending ever new names went on unseen: no word that the logging stopped.
      logger.warning(
        "more than 1,000 Basic Ingest rule names (or topics) of no rule came: no more are logged; the summary counts their messages (for rules not loaded)"
      )
    }
  }

  /// A message for one rule (a replayed error record) that no rule of that name took: the rule was
  /// removed or renamed, or its FROM no longer matches the topic. Logged once per rule name (up to
  /// 1,000 names), so driving a dead-letter file through the rules again says what it could not do.
  func noteMissingRule(_ name: String, for message: Message) {
    statistics.withLock { $0.forMissingRules += 1 }
    CounterStore.shared.messagesForMissingRules.add(1)
    switch Self.novelty(name, in: missingRuleNames) {
    case .seen: break
    case .pastLimit:
      logger.warning(
        "records came for more than 1,000 rule names not loaded: no more are logged; the summary counts them all"
      )
    case .new:
      logger.warning(
        "\(message.origin): the record is for rule '\(name)', which is not loaded, is disabled or does not match topic '\(message.loggedTopic)': its message goes to no rule (logged once per rule name; the summary counts them all)"
      )
    }
  }

  /// Whether a name is logged once per name: `new` the first time it comes to `names` (which keeps
  /// up to 1,000); `pastLimit` for the first new name once they are full (said once, that no more are
  /// logged); `seen` otherwise.
  enum Novelty { case new, seen, pastLimit }

  /// `name`'s ``Novelty`` in `names`, noted there.
  static func novelty(_ name: String, in names: borrowing Mutex<Set<String>>) -> Novelty {
    names.withLock { names in
      if names.contains(name) { return .seen }
      if names.count < 1_000 {
        names.insert(name)
        return .new
      }
      // A marker no name or topic holds (NUL): the limit said once.
      return names.insert("\u{0}").inserted ? .pastLimit : .seen
    }
  }

  /// Returns when nothing is in flight. The run is ending: a record held because the dead-letter
  /// file failed gets one last write, and its message is then left unacknowledged if that fails.
  public func drain() async {
    endHolding()
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let idle = slots.withLock { state -> Bool in
        if state.inFlight == 0 && state.waiters.isEmpty { return true }
        state.idleWaiters.append(continuation)
        return false
      }
      if idle { continuation.resume() }
    }
  }

  /// Whether a message of `bytes` fits beside what is in flight (the first always does).
  private func fits(_ bytes: Int, in state: SlotState) -> Bool {
    state.inFlight < maxInFlight && (state.inFlight == 0 || state.inFlightBytes + bytes <= maxInFlightBytes)
  }

  func tryAcquire(bytes: Int) -> Bool {
    slots.withLock { state -> Bool in
      guard state.waiters.isEmpty, fits(bytes, in: state) else { return false }
      state.inFlight += 1
      state.inFlightBytes += bytes
      return true
    }
  }

  /// Takes slots for as many of `messages`, from the first, as fit without waiting; returns how many.
  func tryAcquire(_ messages: ArraySlice<Message>) -> Int {
    guard !messages.isEmpty else { return 0 }
    return slots.withLock { state -> Int in
      guard state.waiters.isEmpty else { return 0 }
      var granted = 0
      for message in messages {
        let bytes = message.payload.count
        guard fits(bytes, in: state) else { break }
        state.inFlight += 1
        state.inFlightBytes += bytes
        granted += 1
      }
      return granted
    }
  }

  func acquire(bytes: Int) async {
    if tryAcquire(bytes: bytes) { return }
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let ready = slots.withLock { state -> Bool in
        if state.waiters.isEmpty && fits(bytes, in: state) {
          state.inFlight += 1
          state.inFlightBytes += bytes
          return true
        }
        state.waiters.append((continuation, bytes))
        return false
      }
      if ready { continuation.resume() }
    }
  }

  func release(count: Int = 1, bytes: Int) {
    var idle: [CheckedContinuation<Void, Never>] = []
    var next: [CheckedContinuation<Void, Never>] = []
    slots.withLock { state in
      state.inFlight -= count
      state.inFlightBytes -= bytes
      // Waiting delivers resume only once a quarter of the room is free, together: a source
      // then delivers many messages per wake-up instead of one (each wake-up is a task switch).
      if !state.waiters.isEmpty && state.inFlight <= lowWater && state.inFlightBytes <= lowWaterBytes {
        while let first = state.waiters.first, fits(first.bytes, in: state) {
          state.waiters.removeFirst()
          next.append(first.continuation)
          state.inFlight += 1
          state.inFlightBytes += first.bytes
        }
      }
      if state.inFlight == 0 && state.waiters.isEmpty {
        idle = state.idleWaiters
        state.idleWaiters = []
      }
    }
    for waiter in next { waiter.resume() }
    for waiter in idle { waiter.resume() }
  }

  /// Counts, acknowledges and releases finished messages, in their order. Together (a lane's
  /// batch), each lock is taken once for all of them; a delivery's messages that no rule with
  /// actions took go through ``finishUnmatched(_:snapshot:startNanoseconds:)``.
  func finish<Finished: Collection<FinishedMessage>>(_ finished: Finished) {
    guard !finished.isEmpty else { return }
    var succeeded = 0
    for message in finished where message.ok { succeeded += 1 }
    let failed = finished.count - succeeded
    statistics.withLock { stats in
      stats.acknowledged += succeeded
      stats.failed += failed
    }
    if succeeded > 0 { CounterStore.shared.messagesAcknowledged.add(succeeded) }
    if failed > 0 { CounterStore.shared.messagesFailed.add(failed) }
    let now = clock.monotonicNanoseconds()
    var bytes = 0
    var latencies = LatencyHistogram.Tally()
    for message in finished {
      latencies.add(nanoseconds: Int64(clamping: now &- message.startNanoseconds))
      bytes += message.message.payloadCount
      message.message.acknowledge(message.ok ? .done : .failed)
    }
    CounterStore.shared.latency.add(latencies)
    // Each snapshot is left once for its run of messages (a batch rarely spans a reload).
    var current = finished.first!.snapshot
    var entered = 0
    for message in finished {
      if message.snapshot !== current {
        current.leave(entered)
        current = message.snapshot
        entered = 0
      }
      entered += 1
    }
    current.leave(entered)
    release(count: finished.count, bytes: bytes)
  }

  /// Performs a lane's jobs and sends each result on (``finish(_:results:on:)``).
  ///
  /// With `holdingForWaits` (one topic's jobs, of a per-topic lane), a failure whose peer asked
  /// to wait (HTTP 429, `Retry-After`) holds the topic until its retries end: the peer gets nothing
  /// more of the topic meanwhile (the next batch's results went out during the wait, hundreds a
  /// second, to a webhook that had asked for a pause).
  func process(
    _ batch: [ActionJob], on configured: ConfiguredAction, holdingForWaits: Bool = false,
    gathered: Bool = false
  ) async {
    // Each topic's results are counted and acknowledged as soon as they are in: a webhook slow on
    // one topic held the acknowledgements (a Kafka source's commits) of every other topic of the
    // batch, delivered long before.
    var retries: [Task<Void, Never>] = []
    var askedToWait = false
    await perform(batch.map(\.input), on: configured, gathered: gathered) { indices, results in
      if results.contains(where: { $0?.retryAfterMs != nil }) { askedToWait = true }
      if let retry = self.finish(indices.map { batch[$0] }, results: results, on: configured) {
        retries.append(retry)
      }
    }
    // An action that keeps its order through retries holds its lane (and its topic) until they
    // end: the later results wait behind them.
    if configured.action.retriesKeepOrder || (holdingForWaits && askedToWait) {
      for retry in retries { await retry.value }
    }
  }

  /// The failed attempts among `results`: not the results failed unsent behind another, for which
  /// no attempt was made (counted in each round, 19 results with 3 attempts counted 71 failures).
  static func failedAttempts(_ results: [ActionError?]) -> Int {
    results.reduce(0) { count, result in count + (result.map { $0.unsent ? 0 : 1 } ?? 0) }
  }

  /// Counts `count` results given up without an attempt of their own (failed unsent behind an
  /// earlier result of their topic, an error action's records while it rests, or at a stop) as
  /// failures, when they take their error path: so every result that takes one counts in
  /// `iotrules_action_failed_total` at least once (a webhook down for 200 results counted 4
  /// failures and 200 error records).
  func countGivenUpUnsent(_ count: Int = 1, on configured: ConfiguredAction) {
    guard count > 0 else { return }
    configured.counters.failed.add(count)
    statistics.withLock { $0.actionFailures += count }
  }

  /// Counts a performed batch's results and sends each job on: done, to its retries, or down its
  /// error path. Returns the retries' task, when some are retried.
  @discardableResult
  func finish(_ batch: [ActionJob], results: [ActionError?], on configured: ConfiguredAction)
    -> Task<Void, Never>?
  {
    // Counted before any acknowledgement, so a summary taken once everything is acknowledged
    // includes this batch.
    let failed = results.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
    let succeeded = results.count - failed
    let attempted = Self.failedAttempts(results)
    if succeeded > 0 { configured.counters.succeeded.add(succeeded) }
    if attempted > 0 { configured.counters.failed.add(attempted) }
    statistics.withLock { stats in
      stats.actionsSucceeded += succeeded
      stats.actionFailures += attempted
    }
    // Rules that end with failures go down their error paths in one task, in batch order (error
    // records come out in message order); the lane goes on meanwhile.
    var failedRules: [(RuleTracker, [(ConfiguredAction, ActionError)])] = []
    var retrying: [(ActionJob, ActionError)] = []
    var finishing: [FinishedMessage] = []
    for (job, result) in zip(batch, results) {
      if let error = result {
        // A result not sent at all (`unsent`) has its attempts still to come, one at least.
        if error.kind == .transient && (configured.retry.attempts > 1 || error.unsent) {
          retrying.append((job, error))
        } else {
          if error.unsent { countGivenUpUnsent(on: configured) }
          if let failures = job.tracker.completeDeferringFailures(configured, error, finishing: &finishing) {
            failedRules.append((job.tracker, failures))
          }
        }
      } else if let failures = job.tracker.completeDeferringFailures(configured, nil, finishing: &finishing) {
        failedRules.append((job.tracker, failures))
      }
    }
    finish(finishing)
    if !failedRules.isEmpty {
      configured.lane.afterEarlierFailures { [failedRules] in await self.handleFailures(failedRules) }
    }
    guard !retrying.isEmpty else { return nil }
    // The lane goes on with later results while these retry (unless the action keeps its order
    // through retries), together and in their order. A result that succeeds finishes at once; the
    // failures that end their rules in a round of attempts go down their error paths together after
    // it (one batch for an error action).
    return Task {
      var failedRules: [(RuleTracker, [(ConfiguredAction, ActionError)])] = []
      await self.retry(
        retrying.map { ($0.0.input, $0.1) }, on: configured,
        completed: { index, outcome in
          let tracker = retrying[index].0.tracker
          var finishing: [FinishedMessage] = []
          if let failures = tracker.completeDeferringFailures(configured, outcome, finishing: &finishing) {
            failedRules.append((tracker, failures))
          }
          self.finish(finishing)
        },
        afterRound: {
          guard !failedRules.isEmpty else { return }
          configured.lane.afterEarlierFailures { [failedRules] in await self.handleFailures(failedRules) }
          failedRules.removeAll()
        })
    }
  }

  /// Delivers `inputs` (in order) to `configured`'s action and returns one result each: a batch
  /// action takes them at once, a keyed-group action one group per key (keys concurrently), any
  /// other one at a time per key. Bounded once the daemon is stopping: after the action's first
  /// transient failure then (a webhook that stopped answering, a broker gone), its later results
  /// are not attempted but fail at once down their error paths, so that a stop waits for one
  /// timeout per action, not one per message in flight (1,024 of them, one after another per
  /// topic, took far longer than any supervisor's grace period). A keyed group fails fast (its
  /// later results fail with a transient failure, unsent) when they will be retried together, or
  /// once stopping.
  ///
  /// `gathered`: the lane gathered these results for a keyed-group action (``GroupGathering``),
  /// which sends them without waiting for more.
  ///
  /// `eachPart` is told the results as they come in (their indices in `inputs`), each
  /// once: a topic group's delivered ones while the group goes on, the rest when it is done; a
  /// batch action's all at once.
  @discardableResult
  func perform(
    _ inputs: [ActionInput], on configured: ConfiguredAction, gathered: Bool = false,
    eachPart: (_ indices: [Int], _ results: [ActionError?]) -> Void = { _, _ in }
  ) async -> [ActionError?] {
    let action = configured.action
    if isStopping, let skipped = skippedAtStop(configured) {
      let results = [ActionError?](repeating: skipped, count: inputs.count)
      eachPart(Array(inputs.indices), results)
      return results
    }
    var results = [ActionError?](repeating: nil, count: inputs.count)
    if let batchAction = action as? any BatchAction {
      results = await batchAction.performBatch(inputs)
      if isStopping { noteAtStop(results, configured) }
      eachPart(Array(inputs.indices), results)
    } else if inputs.count == 1, !gathered {
      results[0] = await Self.performOne(action, inputs[0])
      if isStopping { noteAtStop(results, configured) }
      eachPart([0], results)
    } else {
      var groups: [ExactText: [Int]] = [:]
      // By the topic's bytes: two topics that differ in normalisation are two groups.
      for (index, input) in inputs.enumerated() {
        groups[ExactText(input.message.topic), default: []].append(index)
      }
      let retriedTogether = configured.retry.attempts > 1
      // A group's delivered results are handed on while it goes on (a webhook or a broker
      // answering a topic's backlog one result after another acknowledges each, not all at the
      // group's end); its failures at its end, to be retried together, in order. Parts wait in
      // `inbox`.
      let inbox = PartInbox()
      await withTaskGroup(of: Void.self) { group in
        for indices in groups.values {
          group.addTask {
            var rest: [(Int, ActionError?)] = []
            defer { inbox.ended(rest) }
            if let grouped = action as? any KeyedGroupAction {
              let told = Mutex([Bool](repeating: false, count: indices.count))
              let results = await grouped.performGroup(
                indices.map { inputs[$0] }, gathered: gathered,
                // A failure without an answer, or a peer asking to wait (429, Retry-After), fails
                // the rest unsent when they will be retried together; behind a bare 5xx each result
                // is sent and keeps its own attempts, as in AWS (one after another, a burst of 503s
                // took each result through its whole schedule in turn). Stopping, any failure fails
                // the rest, an answered one too: a webhook answering 504 after 29 s would hold the
                // stop one answer per queued result.
                failingFast: { failure in
                  (retriedTogether && (!failure.answered || failure.retryAfterMs != nil)) || self.isStopping
                },
                delivered: { offset in
                  // Once each: a second telling would finish its message twice.
                  let first = told.withLock { told in
                    defer { told[offset] = true }
                    return !told[offset]
                  }
                  if first { inbox.delivered(indices[offset]) }
                })
              if self.isStopping { self.noteAtStop(results, configured) }
              let early = told.withLock { $0 }
              assert(
                indices.indices.allSatisfy { !early[$0] || results[$0] == nil },
                "a result told delivered failed")
              rest = indices.indices.filter { !early[$0] }.map { (indices[$0], results[$0]) }
              return
            }
            for index in indices {
              // Asked at each result: the stop may come while this group is being performed.
              let stopping = self.isStopping
              if stopping, let skipped = self.skippedAtStop(configured) {
                rest.append((index, skipped))
                continue
              }
              let result = await Self.performOne(action, inputs[index])
              if stopping { self.noteAtStop([result], configured) }
              if result == nil {
                inbox.delivered(index)
              } else {
                rest.append((index, result))
              }
            }
          }
        }
        var ended = 0
        func takeParts() {
          let (delivered, ends) = inbox.take()
          if !delivered.isEmpty {
            eachPart(delivered, [ActionError?](repeating: nil, count: delivered.count))
          }
          for part in ends {
            for (index, result) in part { results[index] = result }
            if !part.isEmpty { eachPart(part.map(\.0), part.map(\.1)) }
          }
          ended += ends.count
        }
        for await _ in inbox.wakes {
          takeParts()
          if ended == groups.count { break }
        }
        if ended < groups.count {
          // The wake-ups ended early (this task was cancelled): what is left is taken once every
          // group is done, as a task group's results would be.
          await group.waitForAll()
          takeParts()
        }
      }
      inbox.finish()
    }
    return results
  }

  /// The results of a batch's topic groups, as `perform(_:on:eachPart:)` collects them: the
  /// indices delivered so far, and each group's last part (its failures, and what it did not tell
  /// before) once it has ended. Each addition wakes the collecting task (one wake-up pending at
  /// most, so the parts that came while it was busy are taken together).
  final class PartInbox: Sendable {
    let parts = Mutex<(delivered: [Int], ends: [[(Int, ActionError?)]])>(([], []))
    let wakes: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init() { (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1)) }

    /// The result at `index` was delivered.
    func delivered(_ index: Int) {
      parts.withLock { $0.delivered.append(index) }
      wake.yield()
    }

    /// A group ended with `rest`, the results it did not tell as delivered.
    func ended(_ rest: [(Int, ActionError?)]) {
      parts.withLock { $0.ends.append(rest) }
      wake.yield()
    }

    /// Takes everything added so far.
    func take() -> (delivered: [Int], ends: [[(Int, ActionError?)]]) {
      parts.withLock { parts in
        defer { parts = ([], []) }
        return parts
      }
    }

    /// No more wake-ups.
    func finish() { wake.finish() }
  }

  /// Per action, its first transient failure once the daemon is stopping: later attempts are not
  /// made (see `perform(_:on:)`). Here, not in each action: empty until a stop, it costs 10,000
  /// rules nothing.
  let failuresAtStop = Mutex<[ObjectIdentifier: ActionError]>([:])

  /// The failure of a result not attempted because `configured` failed transiently since the
  /// daemon began to stop, or nil.
  func skippedAtStop(_ configured: ConfiguredAction) -> ActionError? {
    guard let failure = failuresAtStop.withLock({ $0[ObjectIdentifier(configured)] }) else { return nil }
    // Permanent: not retried, and not counted or described as another attempt.
    var skipped = ActionError(
      .permanent,
      configured.action.failedAttemptsLeaveNothing
        ? "not written: the daemon is stopping and this action has failed since (\(failure.message)); "
          + "an earlier attempt of this result, if there was one, was rolled back"
        : "not sent (again): the daemon is stopping and this action has failed since (\(failure.message)); "
          + "an earlier attempt of this result, if there was one, may have arrived")
    skipped.unsent = true
    return skipped
  }

  /// Remembers the first transient failure among `results` of `configured` that got no answer (the
  /// daemon is stopping).
  func noteAtStop(_ results: [ActionError?], _ configured: ConfiguredAction) {
    // A peer that answered (a webhook's 503 or 429) is still there: its later results are tried.
    // A result not sent for another's failure says nothing of its own.
    guard
      let failure = results.lazy.compactMap({ $0 }).first(where: {
        $0.kind == .transient && !$0.answered && !$0.unsent
      })
    else {
      return
    }
    failuresAtStop.withLock { failures in
      if failures[ObjectIdentifier(configured)] == nil { failures[ObjectIdentifier(configured)] = failure }
    }
  }

  static func performOne(_ action: any Action, _ input: ActionInput) async -> ActionError? {
    do {
      try await action.perform(input)
      return nil
    } catch {
      return error
    }
  }

  /// Runs `inputs` through `configured` as one batch, with its retry policy (the ones failing
  /// transiently retried together); for each, nil on success, else its last error.
  func performWithRetries(_ configured: ConfiguredAction, _ inputs: [ActionInput]) async -> [ActionError?] {
    var outcomes = await perform(inputs, on: configured)
    let failed = outcomes.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
    if inputs.count > failed { configured.counters.succeeded.add(inputs.count - failed) }
    guard failed > 0 else { return outcomes }
    let attempted = Self.failedAttempts(outcomes)
    configured.counters.failed.add(attempted)
    statistics.withLock { $0.actionFailures += attempted }
    countGivenUpUnsent(
      outcomes.reduce(0) { $0 + ($1.map { $0.unsent && $0.kind != .transient ? 1 : 0 } ?? 0) }, on: configured
    )
    let transient = outcomes.indices.filter { outcomes[$0]?.kind == .transient }
    guard !transient.isEmpty else { return outcomes }
    // An error action's writes are not the rules' action writes the summary counts (its first
    // attempt's success is not counted there either).
    await retry(transient.map { (inputs[$0], outcomes[$0]!) }, on: configured, countsWrites: false) {
      index, result in outcomes[transient[index]] = result
    }
    return outcomes
  }

  /// Whether `stopRetrying` was called.
  var isStopping: Bool { backoffs.isCut }

  /// Retries waiting out a backoff; cut when the daemon stops.
  let backoffs = CuttableWaits()

  /// Waits `milliseconds` before a retry, or less once `stopRetrying` is called.
  func backoff(milliseconds: Int) async { await backoffs.wait(milliseconds: milliseconds, clock: clock) }

  /// Tells retries to stop waiting: every backoff ends now, and each retry makes one more attempt
  /// before its error path. For shutdown (SIGTERM), so that a long retry schedule cannot hold the
  /// drain up; results keep their error paths.
  public func stopRetrying() {
    endHolding()
    backoffs.cut()
  }

  /// Retries results that failed transiently under `configured`'s policy (one lane batch's, or the
  /// record of an error action), together and in their order: a batch action (or an http action's request per topic) gets the
  /// ones still failing as one batch again, after one backoff for them all, not each on its own
  /// jittered schedule (which scrambled their order and split their batch). Each result completes
  /// as soon as it succeeds or fails permanently; the rest after the last attempt.
  ///
  /// `completed` gets each result's index in `failed` and outcome (nil for success), once. Without
  /// `countsWrites` (an error action), a success is not one of the summary's action writes.
  func retry(
    _ failed: [(ActionInput, ActionError)], on configured: ConfiguredAction, countsWrites: Bool = true,
    completed: (Int, ActionError?) -> Void, afterRound: () -> Void = {}
  ) async {
    // Once the daemon is told to stop, a retry makes one last attempt at once instead of waiting
    // out its schedule (which can be long: SIGTERM must not wait for it), then takes its error path.
    //
    // Attempts are counted per result: one failed unsent behind an earlier result of its topic
    // (an http action keeping the topic's order) made none, and waits for that result to succeed
    // or to run out of attempts, then has its own. So one result the webhook always refuses does
    // not take the healthy ones behind it down its error path. But when the first of them fails
    // too without an answer (a timeout, a refused connection), the endpoint rather than one result
    // is failing: the rest of the topic's results go down their error paths unsent, as they would
    // have, and a webhook that stopped answering costs one timeout more, not one per result. A peer
    // that answers (HTTP 429 or 5xx) is there and busy for a while: each result behind it keeps its
    // own attempts, as each message has its own in AWS (a burst of six 503s dead-lettered a whole
    // backlog of 200 after four requests).
    let limit = configured.retry.attempts
    var pending = failed.indices.map {
      (index: $0, error: failed[$0].1, attempts: failed[$0].1.unsent ? 0 : 1)
    }
    // Topics one of whose results ran out of attempts in the round before: the next failure of
    // such a topic ends its pending results.
    var exhaustedTopics: Set<ExactText> = []
    var lastChance = false
    var stoppedEarly = false
    // An unsent result's message says so already.
    func suffix(_ attempts: Int) -> String {
      let stopped = stoppedEarly ? "retries stopped at shutdown" : ""
      if attempts == 0 { return stopped.isEmpty ? "" : " (\(stopped))" }
      return " (after \(attempts) attempt\(attempts == 1 ? "" : "s")\(stopped.isEmpty ? "" : "; " + stopped))"
    }
    func end(_ item: (index: Int, error: ActionError, attempts: Int)) {
      var error = item.error
      error.message += suffix(item.attempts)
      if item.attempts == 0 { countGivenUpUnsent(on: configured) }
      completed(item.index, error)
    }
    // Those whose last failure already used their last attempt end at once (a policy of one).
    for item in pending where item.attempts >= limit { end(item) }
    pending.removeAll { $0.attempts >= limit }
    while !pending.isEmpty {
      if lastChance {
        stoppedEarly = true
        break
      }
      lastChance = isStopping
      // The backoff of the most tried among them (results failed unsent have had no attempt).
      let mostTried = pending.map(\.attempts).max() ?? 0
      let tries = max(1, mostTried)
      var delay = configured.retry.backoffMs(retry: tries, random: Double.random(in: 0...1))
      // A peer's Retry-After (HTTP 429/503) is honoured, up to the policy's longest backoff.
      if let asked = pending.compactMap(\.error.retryAfterMs).max() {
        delay = max(delay, min(asked, configured.retry.maxBackoffMs))
      }
      // Said at info level, within the action's own budget of lines: why results are sent again.
      let first = failed[pending[0].index].0
      // The error of one that was sent (not one failed unsent behind it), when there is one.
      let cause = (pending.first { !$0.error.unsent } ?? pending[0]).error
      let (logs, unlogged) = failureLogTurn(rule: first.ruleName, action: configured.label, retries: true)
      if logs {
        var metadata: Logger.Metadata = [
          "rule": "\(first.ruleName)", "action": "\(configured.label)",
          // Numbers in JSON logs, as every count is.
          "results": .stringConvertible(pending.count),
          "attempt": "\(mostTried + 1) of \(limit)",
          "backoffMs": .stringConvertible(lastChance ? 0 : delay),
          "error": "\(cause.message)",
        ]
        if unlogged > 0 { metadata["unloggedBefore"] = .stringConvertible(unlogged) }
        logger.info(
          lastChance
            ? "action failed transiently; the daemon is stopping: one last attempt, without backoff"
            : "action failed transiently, retrying", metadata: metadata)
      }
      // A backoff cut short (shutdown) does not skip the attempt, the last one: the messages are
      // still owed a result.
      if !lastChance {
        await backoff(milliseconds: delay)
        lastChance = isStopping
      }
      // Each success completes as soon as it is told (a round of retries over a slow webhook held
      // every acknowledgement until its end, as the first attempt did); `eachPart` hears every
      // result once.
      let results = await perform(pending.map { failed[$0.index].0 }, on: configured) { positions, outcomes in
        for (position, outcome) in zip(positions, outcomes) where outcome == nil {
          let item = pending[position]
          // Counted before it completes: its acknowledgement can end the run, and the summary and
          // the metrics must show the retry that delivered it.
          let resent = item.attempts > 0
          if resent { configured.counters.retried.add() }
          configured.counters.succeeded.add()
          self.statistics.withLock { stats in
            if resent { stats.retries += 1 }
            if countsWrites { stats.actionsSucceeded += 1 }
          }
          completed(item.index, nil)
          exhaustedTopics.remove(ExactText(failed[item.index].0.message.topic))
        }
      }
      // Retries are results sent again: not those failed unsent so far (sent now for the first
      // time), nor those this round did not send (the daemon stopping, an earlier result of
      // their topic failing): the summary counted retries no server saw. The delivered ones were
      // counted as they were told; these are the failed ones.
      let resent = zip(pending, results).filter { item, result in
        guard let result else { return false }
        return item.attempts > 0 && !result.unsent
      }.count
      configured.counters.retried.add(resent)
      statistics.withLock { $0.retries += resent }
      var still: [(index: Int, error: ActionError, attempts: Int)] = []
      var failingTopics: Set<ExactText> = []
      var nowExhausted: Set<ExactText> = []
      for (item, result) in zip(pending, results) {
        // A success was completed when `perform` told it.
        guard let error = result else { continue }
        let topic = ExactText(failed[item.index].0.message.topic)
        if !error.unsent {
          configured.counters.failed.add()
          statistics.withLock { $0.actionFailures += 1 }
        }
        if error.kind == .permanent {
          // Not sent at the stop: what its own last attempt met is said too.
          var error = error
          if error.unsent, item.attempts > 0 {
            error.message += "; its own last attempt: \(item.error.message)"
          }
          if error.unsent, item.attempts == 0 { countGivenUpUnsent(on: configured) }
          completed(item.index, error)
          continue
        }
        let attempts = item.attempts + (error.unsent ? 0 : 1)
        if !error.unsent, !error.answered, exhaustedTopics.contains(topic) { failingTopics.insert(topic) }
        if attempts >= limit {
          end((item.index, error, attempts))
          nowExhausted.insert(topic)
        } else {
          still.append((item.index, error, attempts))
        }
      }
      // A topic whose result ran out of attempts, and whose next result failed as well: its
      // pending results end now.
      for item in still where failingTopics.contains(ExactText(failed[item.index].0.message.topic)) {
        end(item)
      }
      still.removeAll { failingTopics.contains(ExactText(failed[$0.index].0.message.topic)) }
      exhaustedTopics.subtract(failingTopics)
      exhaustedTopics.formUnion(nowExhausted)
      pending = still
      afterRound()
    }
    for item in pending { end(item) }
    afterRound()
  }

  func record(_ failures: [ErrorRecord.Failure], tracker: RuleTracker) -> ErrorRecord {
    let message = tracker.message
    var record = ErrorRecord(
      ruleName: tracker.rule.name, topic: message.topic, traceId: tracker.traceID,
      clientId: message.clientID ?? "n/a",
      base64OriginalPayload: Data(message.payload).base64EncodedString(), failures: failures,
      timestamp: clock.nowMs(), origin: message.origin, receivedAt: message.receivedAtMs)
    record.mqttProperties = message.mqttProperties
    record.userProperties = message.userProperties.map { [$0.key, $0.value] }
    return record
  }

  /// One error record on its way: the rule of the batch it is for (an index into it), and the
  /// actions whose failures it holds.
  struct PendingRecord {
    let rule: Int
    let record: ErrorRecord
    let origins: [ConfiguredAction]
  }

  /// Sends the failures of some rules (a lane batch's, in message order) down their error paths,
  /// then finishes each rule. The records bound for one error action go to it as one batch, in
  /// order: one write and fsync for a file, one transaction for SQLite (a storm of failures wrote
  /// and synced each record alone, 2,000 a second). A rule whose record could not be written
  /// anywhere finishes as failed.
  func handleFailures(_ rules: [(RuleTracker, [(ConfiguredAction, ActionError)])]) async {
    var targets: [(errorAction: ConfiguredAction, records: [PendingRecord])] = []
    var targetOf: [ObjectIdentifier: Int] = [:]
    var deadLetters: [PendingRecord] = []
    func send(_ pending: PendingRecord, to errorAction: ConfiguredAction?) {
      guard let errorAction else { return deadLetters.append(pending) }
      if let index = targetOf[ObjectIdentifier(errorAction)] {
        targets[index].records.append(pending)
      } else {
        targetOf[ObjectIdentifier(errorAction)] = targets.count
        targets.append((errorAction, [pending]))
      }
    }
    for (index, (tracker, failures)) in rules.enumerated() {
      let rule = tracker.rule
      var ruleLevel: [(ConfiguredAction, ErrorRecord.Failure)] = []
      // In the order of the rule's actions, not of their completion: a record lists its failures
      // the same way each time.
      func place(_ configured: ConfiguredAction) -> Int {
        rule.actions.firstIndex { $0 === configured } ?? Int.max
      }
      let ordered = failures.count < 2 ? failures : failures.sorted { place($0.0) < place($1.0) }
      for (configured, error) in ordered {
        let failure = ErrorRecord.Failure(
          failedAction: configured.action.actionName,
          failedResource: error.resource ?? configured.action.resource,
          errorMessage: error.message)
        let (logs, unlogged) = failureLogTurn(rule: rule.name, action: configured.label)
        if logs {
          var metadata: Logger.Metadata = [
            "rule": "\(rule.name)", "action": "\(configured.label)",
            "topic": "\(tracker.message.loggedTopic)",
            "origin": "\(tracker.message.origin)", "error": "\(error.message)",
            // The record's failedResource: which database and table, file, topic or URL (two
            // databases with one table name were one line alike).
            "resource": "\(failure.failedResource)",
            // The error record's traceId (and cloudwatchTraceId): the record finds its log lines.
            "traceId": "\(tracker.traceID)",
          ]
          if unlogged > 0 { metadata["unloggedBefore"] = .stringConvertible(unlogged) }
          logger.warning("action failed", metadata: metadata)
        }
        if let errorAction = configured.errorAction {
          configured.counters.errorPath.add()
          send(
            PendingRecord(rule: index, record: record([failure], tracker: tracker), origins: [configured]),
            to: errorAction)
        } else {
          ruleLevel.append((configured, failure))
        }
      }
      guard !ruleLevel.isEmpty else { continue }
      if rule.errorAction != nil {
        for (configured, _) in ruleLevel { configured.counters.errorPath.add() }
      }
      send(
        PendingRecord(
          rule: index, record: record(ruleLevel.map(\.1), tracker: tracker), origins: ruleLevel.map(\.0)),
        to: rule.errorAction)
    }
    // Each rule finishes as soon as its records (the rule's, its actions' own) are written
    // somewhere or cannot be: a record held by a failing dead-letter file holds its own message,
    // not the batch's others (those written once the file took records again stayed
    // unacknowledged behind it).
    var left = [Int](repeating: 0, count: rules.count)
    var ok = [Bool](repeating: true, count: rules.count)
    for pending in targets.flatMap(\.records) + deadLetters { left[pending.rule] += 1 }
    for (index, (tracker, _)) in rules.enumerated() where left[index] == 0 {
      tracker.ruleFinished(ok: true, dispatcher: self)
    }
    func resolved(_ rule: Int, _ written: Bool) {
      ok[rule] = ok[rule] && written
      left[rule] -= 1
      if left[rule] == 0 { rules[rule].0.ruleFinished(ok: ok[rule], dispatcher: self) }
    }
    for (errorAction, records) in targets {
      await sendToErrorAction(errorAction, records, of: rules) { resolved(records[$0].rule, $1) }
    }
    await writeDeadLetters(deadLetters.map { ($0.record, $0.origins) }) { resolved(deadLetters[$0].rule, $1) }
  }

  /// How long an error action that failed transiently through its retries is skipped: the
  /// records meanwhile go to the dead-letter file, then the next record tries it again.
  static let errorActionRestMs = 30_000

  /// Performs `records` (of `rules`) on `errorAction` as one batch with its retries; a record it
  /// fails goes to the dead-letter file with that failure added. Tells `finished` of each record
  /// (by its index) whether it was written, as soon as that is known.
  func sendToErrorAction(
    _ errorAction: ConfiguredAction, _ records: [PendingRecord],
    of rules: [(RuleTracker, [(ConfiguredAction, ActionError)])], finished: (Int, Bool) -> Void
  ) async {
    // Monotonic: a wall clock stepped back must not stretch the rest.
    let now = Int(clock.monotonicNanoseconds() / 1_000_000)
    let outcomes: [ActionError?]
    if let resting = errorAction.restingUntil.withLock({ $0 }), now < resting.untilMs {
      // It failed through its whole retry schedule a moment ago: the records behind that one go
      // to the dead-letter file at once instead of each waiting out the same schedule (a webhook
      // that stopped answering held every lane's failures for minutes each).
      outcomes = Array(
        repeating: ActionError(
          .transient,
          "not attempted: the error action failed for an earlier record \((now - resting.untilMs + Self.errorActionRestMs) / 1000) s ago (\(resting.failure)); it is tried again \((resting.untilMs - now + 999) / 1000) s from now"
        ), count: records.count)
      // Each is a record given up without an attempt: counted as the error action's failure.
      countGivenUpUnsent(records.count, on: errorAction)
    } else {
      let inputs = records.map { pending in
        let tracker = rules[pending.rule].0
        // The record is the payload; templates still read the rule's SET variables (AWS: they may
        // be used in error action substitution templates).
        var evaluation = pending.record.evaluation
        evaluation.variables = tracker.evaluation.variables
        return ActionInput(ruleName: tracker.rule.name, evaluation: evaluation, message: tracker.message)
      }
      outcomes = await performWithRetries(errorAction, inputs)
      if let failure = outcomes.lazy.compactMap({ $0 }).first(where: { $0.kind == .transient }) {
        if !isStopping {
          let failedAt = Int(clock.monotonicNanoseconds() / 1_000_000)
          errorAction.restingUntil.withLock { $0 = (failedAt + Self.errorActionRestMs, failure.message) }
        }
      } else if outcomes.contains(where: { $0 == nil }) {
        errorAction.restingUntil.withLock { $0 = nil }
      }
    }
    let written = outcomes.reduce(0) { $0 + ($1 == nil ? 1 : 0) }
    if written > 0 { statistics.withLock { $0.errorRecords += written } }
    var deadRecords: [(index: Int, record: ErrorRecord, origins: [ConfiguredAction])] = []
    for (index, (pending, outcome)) in zip(records, outcomes).enumerated() {
      guard let error = outcome else {
        finished(index, true)
        continue
      }
      // Never retried into itself: the record, with the error action's own failure, goes to the
      // dead-letter file; like an action's failures, the log lines are capped per rule and error
      // action (a storm wrote one line a record).
      let message = rules[pending.rule].0.message
      let ruleName = rules[pending.rule].0.rule.name
      let failure = ErrorRecord.Failure(
        failedAction: errorAction.action.actionName,
        failedResource: error.resource ?? errorAction.action.resource,
        errorMessage: error.message, isErrorAction: true)
      let (logs, unlogged) = failureLogTurn(rule: ruleName, action: errorAction.label)
      if logs {
        var metadata: Logger.Metadata = [
          "rule": "\(ruleName)", "action": "\(errorAction.label)",
          "topic": "\(message.loggedTopic)", "origin": "\(message.origin)", "error": "\(error.message)",
          // As an action's failure names it: the file, database or URL the error action failed at.
          "resource": "\(failure.failedResource)",
          "traceId": "\(pending.record.traceId)",
        ]
        if unlogged > 0 { metadata["unloggedBefore"] = .stringConvertible(unlogged) }
        logger.error("error action failed", metadata: metadata)
      }
      var deadRecord = pending.record
      deadRecord.failures.append(failure)
      deadRecords.append((index, deadRecord, pending.origins))
    }
    await writeDeadLetters(deadRecords.map { ($0.record, $0.origins) }) { index, written in
      finished(deadRecords[index].index, written)
    }
  }

  /// Writes `records` to the dead-letter file together, in their order (they share its fsyncs);
  /// each that fails goes on alone through ``writeDeadLetter(_:origins:)``, in order. Tells
  /// `finished` of each (by its index) whether it was written, as soon as that is known: the ones
  /// written at once before any held one is tried again.
  func writeDeadLetters(
    _ records: [(record: ErrorRecord, origins: [ConfiguredAction])], finished: (Int, Bool) -> Void
  ) async {
    if records.count < 2 {
      if let only = records.first { finished(0, await writeDeadLetter(only.record, origins: only.origins)) }
      return
    }
    let outcomes = await deadLetter.write(records.map(\.record))
    for (index, (pending, outcome)) in zip(records, outcomes).enumerated() where outcome == nil {
      deadLettered(origins: pending.origins)
      finished(index, true)
    }
    for (index, (pending, outcome)) in zip(records, outcomes).enumerated() where outcome != nil {
      finished(index, await writeDeadLetter(pending.record, origins: pending.origins))
    }
  }

  /// Counts a record the dead-letter file took; the daemon is healthy again once no record is held.
  func deadLettered(origins: [ConfiguredAction]) {
    for configured in origins { configured.counters.deadLettered.add() }
    statistics.withLock { $0.deadLettered += 1 }
    if deadLetterFailingHint.load(ordering: .acquiring) {
      deadLetterFailing.withLock { failing in
        // Healthy again only once no record is held: another record's success (a small one
        // where a large one does not fit) says nothing of the held one.
        guard failing, heldRecords.load(ordering: .relaxed) == 0 else { return }
        failing = false
        deadLetterFailingHint.store(false, ordering: .releasing)
        health.clear(Self.deadLetterComponent)
      }
    }
  }

  /// Writes `record` to the dead-letter file. When the write fails, the record is held: its
  /// message stays unacknowledged and in flight (it keeps its slot, so the source slows once many
  /// are held), the daemon is unhealthy, and the write is tried again with backoff (0.2 s doubling
  /// to 5 s) until it succeeds, when the message is acknowledged, or until the run ends (`drain`,
  /// a stop signal), when it is left unacknowledged: false. The source keeps it either way.
  func writeDeadLetter(_ record: ErrorRecord, origins: [ConfiguredAction]) async -> Bool {
    var attempts = 0
    var delayMs = 200
    var held = false
    defer { if held { heldRecords.subtract(1, ordering: .relaxed) } }
    while true {
      let ending = holding.isCut
      attempts += 1
      do {
        try await deadLetter.write(record)
        if held {
          heldRecords.subtract(1, ordering: .relaxed)
          held = false
        }
        deadLettered(origins: origins)
        if attempts > 1 {
          logger.notice(
            "dead-letter write succeeded after failing: the held message is acknowledged",
            metadata: [
              "rule": "\(record.ruleName)", "topic": "\(Message.logged(topic: record.topic))",
              "attempts": .stringConvertible(attempts),
            ])
        }
        return true
      } catch {
        deadLetterFailing.withLock { failing in
          failing = true
          deadLetterFailingHint.store(true, ordering: .releasing)
          health.report(
            Self.deadLetterComponent,
            "a write failed (\(error)) and none has succeeded since: messages whose error path failed are held unacknowledged",
            level: .unhealthy)
        }
        if attempts == 1 || ending {
          logger.error(
            ending
              ? (neverHolds.load(ordering: .relaxed)
                ? "dead-letter write failed in a replay: the message is not acknowledged (replay it again once the file takes records)"
                : "dead-letter write failed as the run ends: the message is not acknowledged")
              : "dead-letter write failed: the message is held unacknowledged and the write retried",
            metadata: [
              "rule": "\(record.ruleName)", "topic": "\(Message.logged(topic: record.topic))",
              "error": "\(error)",
              "record": "\(record.json)",
            ])
        }
        if ending { return false }
        if !held {
          held = true
          heldRecords.add(1, ordering: .relaxed)
        }
        await holding.wait(milliseconds: delayMs, clock: clock)
        delayMs = min(delayMs * 2, 5_000)
      }
    }
  }

  /// Whether a record the dead-letter file does not take is held and written again (a long-running
  /// source, the default), or its message left unacknowledged at once. A batch (a replay to its
  /// end) sets it false before it starts: its source would wait for a slot held records keep, and
  /// never reach the end at which they give up.
  public var holdsFailedDeadLetters: Bool {
    get { !holding.isCut }
    set {
      if !newValue {
        neverHolds.store(true, ordering: .relaxed)
        endHolding()
      }
    }
  }

  /// Set with `holdsFailedDeadLetters` false: a refused record is given up from the start of the
  /// run, not because it ends (the log says which).
  let neverHolds = Atomic<Bool>(false)

  /// Records held because the dead-letter file refused them, being written again.
  let heldRecords = Atomic<Int>(0)

  /// Held dead-letter writes waiting to be tried again; cut when the run ends.
  let holding = CuttableWaits()

  /// The run is ending: held writes make one last attempt now.
  func endHolding() { holding.cut() }

}

/// Sleeps that can all be cut short at once, for good: the backoffs of retries (cut when the
/// daemon stops) and of held dead-letter writes (cut when the run ends).
final class CuttableWaits: Sendable {
  private let state = Mutex<(cut: Bool, next: Int, waiting: [Int: Task<Void, Never>])>((false, 0, [:]))

  /// Whether `cut` was called.
  var isCut: Bool { state.withLock { $0.cut } }

  /// Waits `milliseconds` on `clock`, or less once `cut` is called (not at all after it).
  func wait(milliseconds: Int, clock: any EngineClock) async {
    let sleep = Task<Void, Never> { _ = try? await clock.sleep(milliseconds: milliseconds) }
    let number = state.withLock { state -> Int? in
      if state.cut { return nil }
      state.next += 1
      state.waiting[state.next] = sleep
      return state.next
    }
    guard let number else {
      sleep.cancel()
      return
    }
    await sleep.value
    _ = state.withLock { $0.waiting.removeValue(forKey: number) }
  }

  /// Ends every wait now and every later one at once.
  func cut() {
    let waiting = state.withLock { state -> [Task<Void, Never>] in
      state.cut = true
      defer { state.waiting = [:] }
      return Array(state.waiting.values)
    }
    for sleep in waiting { sleep.cancel() }
  }
}
