import Foundation
import Synchronization

/// Long-lived threads that run blocking calls (fsync) side by side, so the file system can commit
/// them together. Threads are started on first need, up to `limit`, and then kept: starting a thread
/// per fsync per batch costs more than the fsync saves on a busy archive.
final class SyncThreads: Sendable {
  /// The shared pool of the archive actions.
  static let shared = SyncThreads(limit: 16)

  private struct State {
    var jobs: [@Sendable () -> Void] = []
    var threads = 0
  }

  private let limit: Int
  private let state = Mutex(State())
  private let wake = DispatchSemaphore(value: 0)

  init(limit: Int) { self.limit = max(1, limit) }

  /// Runs every job, at most `limit` at once, and returns when all have finished.
  func runAll(_ jobs: [@Sendable () -> Void]) {
    let group = DispatchGroup()
    var start = 0
    state.withLock { state in
      for job in jobs {
        group.enter()
        state.jobs.append {
          job()
          group.leave()
        }
      }
      // As many threads as the largest call has needed, up to the limit.
      let wanted = min(limit, max(state.threads, jobs.count))
      start = wanted - state.threads
      state.threads = wanted
    }
    for _ in 0..<start {
      let thread = Thread { [self] in work() }
      thread.name = "iotrules-fsync"
      thread.start()
    }
    for _ in 0..<jobs.count { wake.signal() }
    group.wait()
  }

  private func work() {
    while true {
      wake.wait()
      while let job = state.withLock({ state -> (@Sendable () -> Void)? in
        state.jobs.isEmpty ? nil : state.jobs.removeFirst()
      }) {
        job()
      }
    }
  }
}
