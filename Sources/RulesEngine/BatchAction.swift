/// An action that can take many results at once, in order (one transaction, one fsync): the
/// dispatcher hands it everything queued for it. An ADDITION to the `Action` contract: actions that
/// do not conform receive `perform` calls one by one.
public protocol BatchAction: Action {
  /// Delivers `inputs` in order and returns one result per input (nil for success). Returns only
  /// when the successful ones are safely written.
  func performBatch(_ inputs: [ActionInput]) async -> [ActionError?]
}
