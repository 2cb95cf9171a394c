/// An action that can take many results at once, in order (one transaction, one fsync): the
/// dispatcher hands it everything queued for it. An ADDITION to the `Action` contract: actions that
/// do not conform receive `perform` calls one by one.
public protocol BatchAction: Action {
  /// Delivers `inputs` in order and returns one result per input (nil for success). Returns only
  /// when the successful ones are safely written.
  func performBatch(_ inputs: [ActionInput]) async -> [ActionError?]
}

/// A batch action whose work splits in two: an ordered part (the writes, queued in order) that the
/// dispatcher runs batch after batch, and a wait (for the writes to be durable: a commit, an fsync)
/// that may overlap the ordered part of the next batch when a whole batch is queued behind it.
/// Jobs still complete in batch order.
public protocol PipelinedBatchAction: BatchAction {
  /// Does the ordered part of a batch now and returns the wait, which gives one result per input
  /// (nil for success) once the successful ones are safely written.
  func startBatch(_ inputs: [ActionInput]) -> @Sendable () async -> [ActionError?]
}

/// An action that takes the results queued for one key (topic) at once, in arrival order: the
/// dispatcher still runs different keys concurrently and one key's group at a time, but the action
/// can put a topic's results in one request (the http action's batching: AWS batches messages of
/// the same topic together).
public protocol KeyedGroupAction: Action {
  /// Delivers one key's `inputs` in order and returns one result per input (nil for success).
  func performGroup(_ inputs: [ActionInput]) async -> [ActionError?]
}
