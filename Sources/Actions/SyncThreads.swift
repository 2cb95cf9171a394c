import Foundation
import Synchronization

/// Long-lived threads that run blocking calls (fsync) side by side, so the file system can commit
/// them together. Threads are started on first need, up to `limit`, and then kept: starting a thread
/// per fsync per batch costs more than the fsync saves on a busy archive.
///
/// The caller runs jobs too while it waits: a batch finishes even when no thread could be started
/// (a container's pids limit, `ulimit -u`), one fsync after another. It waited for a thread that
/// never came, and the daemon with it, for good.
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
  /// Starts a thread running the closure; false when none could be started.
  private let startThread: @Sendable (@escaping @Sendable () -> Void) -> Bool

  /// A pool of at most `limit` threads, started by `startThread` (by default, detached POSIX threads
  /// named `iotrules-fsync`).
  init(
    limit: Int,
    startThread: @escaping @Sendable (@escaping @Sendable () -> Void) -> Bool = SyncThreads.detachedThread
  ) {
    self.limit = max(1, limit)
    self.startThread = startThread
  }

  /// Runs every job, at most `limit` at once besides the caller, and returns when all have finished.
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
    for _ in 0..<start where !startThread({ [self] in work() }) {
      state.withLock { $0.threads -= 1 }
    }
    // A wake for each job a thread may take (the caller takes the rest): with no thread, none, so
    // the semaphore does not grow for threads that never come.
    for _ in 0..<min(jobs.count, state.withLock { $0.threads }) { wake.signal() }
    while let job = nextJob() { job() }
    group.wait()
  }

  private func nextJob() -> (@Sendable () -> Void)? {
    state.withLock { state in state.jobs.isEmpty ? nil : state.jobs.removeFirst() }
  }

  private func work() {
    while true {
      wake.wait()
      while let job = nextJob() { job() }
    }
  }

  /// Starts `body` on a detached POSIX thread named `iotrules-fsync`; false when the system
  /// refuses a thread.
  static func detachedThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    final class Box {
      let body: @Sendable () -> Void
      init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    let box = Unmanaged.passRetained(Box(body))
    var thread = pthread_t()
    let result = pthread_create(
      &thread, &attributes,
      { argument in
        Thread.current.name = "iotrules-fsync"
        Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
        return nil
      }, box.toOpaque())
    if result != 0 {
      box.release()
      return false
    }
    return true
  }
}
