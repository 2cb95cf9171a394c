import Synchronization
import Testing

@testable import Daemon

/// A value behind a lock that the test's closures share.
private final class Shared<Value: Sendable>: Sendable {
  let mutex: Mutex<Value>
  init(_ value: Value) { mutex = Mutex(value) }
  func withLock<Result>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }
}

/// SIGHUP and polling reloads go through one queue: never two at once, none after shutdown began.
struct ReloadQueueTests {
  @Test func reloadsNeverOverlapAndEachOneRuns() async {
    let queue = ReloadQueue()
    let running = Shared((now: 0, most: 0, runs: 0))
    await withTaskGroup(of: Bool.self) { group in
      for _ in 0..<8 {
        group.addTask {
          await queue.run {
            running.withLock {
              $0.now += 1; $0.most = max($0.most, $0.now)
            }
            try? await Task.sleep(for: .milliseconds(10))
            running.withLock {
              $0.now -= 1; $0.runs += 1
            }
          }
        }
      }
      for await ran in group { #expect(ran) }
    }
    #expect(running.withLock { $0.most } == 1)
    #expect(running.withLock { $0.runs } == 8)
  }

  @Test func closeWaitsForTheRunningReloadAndRefusesLaterOnes() async throws {
    let queue = ReloadQueue()
    let events = Shared<[String]>([])
    let first = Task {
      await queue.run {
        try? await Task.sleep(for: .milliseconds(100))
        events.withLock { $0.append("first done") }
      }
    }
    // Let the first reload start before shutdown begins.
    for _ in 0..<100 where events.withLock({ $0.isEmpty }) {
      try await Task.sleep(for: .milliseconds(1))
    }
    await queue.close()
    events.withLock { $0.append("closed") }
    let late = await queue.run { events.withLock { $0.append("late ran") } }
    #expect(await first.value)
    #expect(!late)
    #expect(events.withLock { $0 } == ["first done", "closed"])
  }
}
