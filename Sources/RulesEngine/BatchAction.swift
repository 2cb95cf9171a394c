/// An action that can take many results at once, in order (one transaction, one fsync): the
/// dispatcher hands it everything queued for it. An ADDITION to the `Action` contract: actions that
/// do not conform receive `perform` calls one by one.
public protocol BatchAction: Action {
  /// Delivers `inputs` in order and returns one result per input (nil for success). Returns only
  /// when the successful ones are safely written.
  func performBatch(_ inputs: [ActionInput]) async -> [ActionError?]
}

/// An action that takes the results queued for one key (topic) at once, in arrival order: the
/// dispatcher still runs different keys concurrently and one key's group at a time, but the action
/// can put a topic's results in one request (the http action's batching: AWS batches messages of
/// the same topic together).
public protocol KeyedGroupAction: Action {
  /// Delivers one key's `inputs` in order and returns one result per input (nil for success).
  func performGroup(_ inputs: [ActionInput]) async -> [ActionError?]

  /// `performGroup(_:)`; with `failingFast`, once one result fails transiently the later ones are
  /// not attempted but fail with it (the dispatcher asks so when they will be retried together,
  /// or when the daemon is stopping).
  func performGroup(_ inputs: [ActionInput], failingFast: Bool) async -> [ActionError?]

  /// `performGroup(_:failingFast:)`, telling `delivered` the index (in `inputs`) of each result as
  /// soon as it has been delivered, before the group ends: the dispatcher acknowledges it then (a
  /// slow webhook working through a topic's backlog of 1,000 results held every acknowledgement,
  /// and so a Kafka source's commits, until the last one was answered). The returned results are
  /// every result's, those told included (nil for them). Tell each result once, and only a
  /// delivered one; once the last is told the daemon may stop and shut the action down, so do no
  /// more work with its resources after that. `failingFast` is asked after each transient failure,
  /// with it: whether the later results fail with it unsent. The dispatcher says yes to one that
  /// got no answer when they will be retried together, and to any once the daemon begins to stop
  /// while the group is under way (a group begun before a stop sent each of its later results, one
  /// timeout after another); a peer's answered refusal (429, 5xx) leaves the rest to be sent, each
  /// with its own attempts.
  func performGroup(
    _ inputs: [ActionInput], failingFast: @Sendable (ActionError) -> Bool, delivered: @Sendable (Int) -> Void
  ) async -> [ActionError?]

  /// `performGroup(_:failingFast:delivered:)`, told whether the dispatcher gathered the group
  /// (``gathering``): then nothing more of its topic can join it before it ends, and its last
  /// batch goes at once. Results not gathered (an error action's, a retry's) may still wait for
  /// others. By default, the same as not gathered.
  func performGroup(
    _ inputs: [ActionInput], gathered: Bool, failingFast: @Sendable (ActionError) -> Bool,
    delivered: @Sendable (Int) -> Void
  ) async -> [ActionError?]

  /// When set, the dispatcher gathers a topic's results before it hands them over: up to
  /// `maxCount` of them or `maxBytes` of their payloads, waiting at most `windowMs` after the
  /// oldest's message was taken (the http
  /// action's batching, as AWS's: a batch opens with its first result and goes when full or after
  /// maxBatchOpenMs). Nil (the default): each part goes as soon as the one before is done.
  var gathering: GroupGathering? { get }
}

/// How a ``KeyedGroupAction``'s topic gathers results into one part.
public struct GroupGathering: Sendable, Equatable {
  /// The most results in one part.
  public var maxCount: Int
  /// The most bytes of results in one part (each result's payload and one more): a part that
  /// fills them goes without waiting out the window.
  public var maxBytes: Int
  /// The longest a result waits for others, in milliseconds after its message was taken.
  public var windowMs: Int

  /// Creates the limits.
  public init(maxCount: Int, maxBytes: Int = .max, windowMs: Int) {
    self.maxCount = maxCount
    self.maxBytes = maxBytes
    self.windowMs = windowMs
  }
}

extension KeyedGroupAction {
  /// Hands each part over as soon as the one before is done.
  public var gathering: GroupGathering? { nil }

  /// Gathered or not, performed alike.
  public func performGroup(
    _ inputs: [ActionInput], gathered: Bool, failingFast: @Sendable (ActionError) -> Bool,
    delivered: @Sendable (Int) -> Void
  ) async -> [ActionError?] {
    await performGroup(inputs, failingFast: failingFast, delivered: delivered)
  }

  /// Attempts every result: an action that cannot stop early.
  public func performGroup(_ inputs: [ActionInput], failingFast: Bool) async -> [ActionError?] {
    await performGroup(inputs)
  }

  /// Tells nothing before the group ends: an action that cannot tell its results one by one (it
  /// fails fast as for a failure without an answer).
  public func performGroup(
    _ inputs: [ActionInput], failingFast: @Sendable (ActionError) -> Bool, delivered: @Sendable (Int) -> Void
  ) async -> [ActionError?] {
    await performGroup(inputs, failingFast: failingFast(ActionError(.transient, "no answer")))
  }
}

/// A batch action that can have several batches out at once: `submitBatch` hands a batch over at
/// once, in order (what is submitted first goes out first), and returns the wait for its results.
/// The dispatcher submits the next batch without waiting for the results of the ones before (a few
/// at a time), so one batch's round trip does not hold the next: the kafka action's delivery
/// reports. `performBatch` is `submitBatch` and its wait.
public protocol PipelinedBatchAction: BatchAction {
  /// Hands `inputs` over, in order, and returns the wait for one result per input (nil for
  /// success).
  func submitBatch(_ inputs: [ActionInput]) -> @Sendable () async -> [ActionError?]
}
