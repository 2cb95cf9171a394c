import Synchronization

/// Runs rule reloads one at a time, in the order they were asked for, and none once closed.
///
/// A SIGHUP reload and the polling reload would otherwise run side by side: both would start from
/// the same running rules, both would swap (the older result could win) and update the MQTT
/// subscriptions concurrently, and a reload after shutdown began would start actions nobody closes.
final class ReloadQueue: Sendable {
  private struct State {
    /// The last reload asked for; each one waits for the one before it.
    var tail: Task<Bool, Never>?
    var closed = false
  }

  private let state = Mutex(State())

  /// Runs `body` after every reload asked for before it; returns whether it ran (not once closed).
  @discardableResult
  func run(_ body: @escaping @Sendable () async -> Void) async -> Bool {
    let task = state.withLock { state -> Task<Bool, Never>? in
      guard !state.closed else { return nil }
      let previous = state.tail
      let task = Task { [self] () -> Bool in
        _ = await previous?.value
        // Asked before `close`, but its turn came after: skipped as well.
        guard !self.state.withLock({ $0.closed }) else { return false }
        await body()
        return true
      }
      state.tail = task
      return task
    }
    guard let task else { return false }
    return await task.value
  }

  /// Refuses later reloads and returns once the one running (if any) has finished.
  func close() async {
    let tail = state.withLock { state -> Task<Bool, Never>? in
      state.closed = true
      return state.tail
    }
    _ = await tail?.value
  }
}
