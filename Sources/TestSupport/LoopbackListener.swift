import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// A loopback listener that takes connections and does nothing else: `closesAtOnce`, each is
/// closed as it comes (a load balancer without its backend); otherwise none is ever accepted
/// (backlog 0, and the connections made here fill it, so further SYNs are dropped: a host that
/// is down but routed).
public final class LoopbackListener: @unchecked Sendable {
  /// The listening socket.
  public let descriptor: Int32
  /// Connections taken (`closesAtOnce`).
  public let accepted = Atomic<Int>(0)
  private var fillers: [Int32] = []
  private let running = Atomic<Bool>(true)
  private let done = DispatchSemaphore(value: 0)

  /// Listens on 127.0.0.1:`port`. With `closesAtOnce` and an `answer`, each connection's request is
  /// read (what comes within 200 ms), `answer` written, then the connection closed (a server that
  /// dies while it answers).
  public init(port: Int, closesAtOnce: Bool, answer: [UInt8] = []) throws {
    descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var yes: Int32 = 1
    setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    let bound = ProcessSupport.withLoopbackAddress(port: port) { bind(descriptor, $0, $1) }
    guard bound == 0, listen(descriptor, closesAtOnce ? 16 : 0) == 0 else {
      let reason = String(cString: strerror(errno))
      Glibc.close(descriptor)
      throw TestPeerError("cannot listen on 127.0.0.1:\(port): \(reason)")
    }
    if closesAtOnce {
      Thread.detachNewThread { [self] in
        while running.load(ordering: .relaxed) {
          var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
          guard poll(&ready, 1, 100) > 0 else { continue }
          let client = accept(descriptor, nil, nil)
          if client >= 0 {
            accepted.add(1, ordering: .relaxed)
            if !answer.isEmpty {
              var request = [UInt8](repeating: 0, count: 65_536)
              var readable = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
              if poll(&readable, 1, 200) > 0 { _ = recv(client, &request, request.count, 0) }
              _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
              // Closed cleanly (a FIN, not a reset for bytes left unread): what else comes is read
              // until the client closes, for a second at most.
              shutdown(client, Int32(SHUT_WR))
              for _ in 0..<10 {
                readable = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
                guard poll(&readable, 1, 100) > 0 else { continue }
                if recv(client, &request, request.count, 0) <= 0 { break }
              }
            }
            Glibc.close(client)
          }
        }
        done.signal()
      }
    } else {
      for _ in 0..<4 {
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
        _ = ProcessSupport.withLoopbackAddress(port: port) { Glibc.connect(client, $0, $1) }
        fillers.append(client)
      }
      done.signal()
    }
  }

  /// Stops taking connections and closes every socket.
  public func stop() {
    running.store(false, ordering: .relaxed)
    done.wait()
    for client in fillers { Glibc.close(client) }
    Glibc.close(descriptor)
  }
}
