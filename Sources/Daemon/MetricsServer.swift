import Foundation
import Prometheus
import RulesEngine
import Synchronization

/// A minimal HTTP/1.1 responder on 127.0.0.1 for `/metrics` (Prometheus text), `/healthz` and
/// `/readyz` (``Health``: 200, or 503 with one line per problem): a
/// thread accepts, each connection is answered on a thread of its own (at most 16 at once), one
/// request per connection, each given 2 s in all to arrive. At the limit a new connection takes
/// the place of the oldest one still waiting for its request (or whose answer has taken more than
/// 2 s to write), so clients that connect and send nothing, trickle, or read slowly cannot keep a
/// probe out. Chosen over an HTTP framework to keep the build small; it serves scrapes, nothing else.
public final class MetricsServer: @unchecked Sendable {
  let registry: PrometheusCollectorRegistry
  /// What `/healthz` and `/readyz` report.
  let health: Health
  /// Metrics read when scraped (the queue depth), in Prometheus text.
  let sampled: @Sendable () -> String
  let listener: Int32
  /// The bound port.
  public let port: Int
  var thread: Thread?

  /// Binds `address`:`port` (0 picks a free port; the address an IPv4 one, 127.0.0.1 by default).
  public init(
    port: Int, address: String = "127.0.0.1", registry: PrometheusCollectorRegistry,
    health: Health = Health(),
    sampled: @escaping @Sendable () -> String = { "" }
  ) throws {
    self.registry = registry
    self.health = health
    self.sampled = sampled
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else {
      throw RuleStoreError(message: "metrics: socket: \(String(cString: strerror(errno)))")
    }
    var yes: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var socketAddress = sockaddr_in()
    socketAddress.sin_family = sa_family_t(AF_INET)
    socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
    guard inet_pton(AF_INET, address, &socketAddress.sin_addr) == 1 else {
      close(fd)
      throw RuleStoreError(message: "metrics: '\(address)' is not an IPv4 address")
    }
    let bound = withUnsafePointer(to: &socketAddress) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard bound == 0, listen(fd, 64) == 0 else {
      let message = String(cString: strerror(errno))
      close(fd)
      throw RuleStoreError(message: "metrics: cannot listen on \(address):\(port): \(message)")
    }
    var actual = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &actual) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    self.listener = fd
    self.port = Int(UInt16(bigEndian: actual.sin_port))
  }

  /// Starts serving on a thread.
  public func start() {
    let thread = Thread { [self] in self.serve() }
    thread.name = "iotrules-metrics"
    self.thread = thread
    thread.start()
  }

  /// Stops accepting.
  public func stop() {
    shutdown(listener, Int32(SHUT_RDWR))
    close(listener)
  }

  /// Where a connection is.
  enum Phase: Equatable {
    /// Its request is being read.
    case reading
    /// Its answer is being written, since then (uptime nanoseconds).
    case answering(since: UInt64)
    /// Cut off for a newcomer; its thread is ending.
    case evicted
  }

  /// Connections being answered, by descriptor: when each was accepted, and its phase. A
  /// descriptor leaves the table, under its lock, before it is closed, so one found there is
  /// still this connection's.
  let active = Mutex<[Int32: (acceptedAt: UInt64, phase: Phase)]>([:])
  /// The most connections answered at once (and, apart, the most cut off whose threads are ending).
  static let maxConnections = 16
  /// The most `/metrics` answers written at once, so that scrapers reading slowly hold a few
  /// connections, not all of them, while a probe waits. At the limit a new scrape takes the place
  /// of the oldest answer written for more than 2 s (whose connection is cut off); with none, it is
  /// refused at once (503).
  static let maxMetricsAnswers = 4
  /// The `/metrics` answers being written: each connection's descriptor and when its answer began
  /// (uptime nanoseconds). A descriptor leaves before it is closed.
  let metricsAnswers = Mutex<[Int32: UInt64]>([:])
  /// How long one request may take to arrive, in all; an answer as long to be written before its
  /// connection may be cut off for a newcomer.
  static let requestDeadlineMs = 2_000

  /// Whether the connection in `phase` may be cut off for a newcomer at `now`: one still waiting
  /// for its request, or one whose answer has been written for longer than the deadline.
  static func isEvictable(_ phase: Phase, now: UInt64) -> Bool {
    switch phase {
    case .reading: true
    case .answering(let since): now &- since >= UInt64(requestDeadlineMs) * 1_000_000
    case .evicted: false
    }
  }

  /// The path of a request target without its query: origin-form (`/metrics?x`), or absolute-form
  /// (`http://host:9090/metrics`, which RFC 9112 asks every server to take; it got 404).
  static func path(of target: Substring) -> String {
    var rest = target
    if let scheme = rest.range(of: "://"), rest[..<scheme.lowerBound].allSatisfy({ $0.isLetter }) {
      rest = rest[scheme.upperBound...]
      rest = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
    }
    return String(rest.split(separator: "?", omittingEmptySubsequences: false).first ?? "")
  }

  /// What the accept loop does after `accept` failed with `code`.
  enum AfterFailedAccept: Equatable {
    /// Accept again at once (a signal interrupted it).
    case again
    /// Accept again after a moment (no descriptor or memory free, a connection aborted).
    case wait
    /// End: the listening socket is closed (the server stopping).
    case stop
  }

  /// The accept loop's course after a failed `accept`: only a closed or invalid listening socket
  /// ends it.
  static func afterFailedAccept(_ code: Int32) -> AfterFailedAccept {
    switch code {
    case EINTR: .again
    case EBADF, EINVAL, ENOTSOCK, EOPNOTSUPP: .stop
    default: .wait
    }
  }

  func serve() {
    while true {
      // At the limit with no connection to cut off (every answer being written in time), or with
      // as many cut off whose threads have not ended yet, new connections wait in the listen
      // backlog rather than being refused.
      while active.withLock({ table in
        let now = DispatchTime.now().uptimeNanoseconds
        let evicted = table.values.filter { $0.phase == .evicted }.count
        let live = table.count - evicted
        return evicted >= Self.maxConnections
          || (live >= Self.maxConnections && !table.values.contains { Self.isEvictable($0.phase, now: now) })
      }) {
        usleep(10_000)
      }
      let client = accept(listener, nil, nil)
      if client < 0 {
        switch Self.afterFailedAccept(errno) {
        case .again: continue
        case .wait:
          // Out of descriptors (EMFILE, ENFILE) or memory, or a connection gone before it was
          // taken: the probes come back once there is room. (The thread ended at the first such
          // error, and /healthz never answered again: a liveness probe restarted the daemon.)
          usleep(50_000)
          continue
        case .stop: return
        }
      }
      // Each connection on its own thread, so a slow client cannot hold up a probe; at the limit
      // the one that has waited longest is cut off (its thread then ends): a reader's reading side
      // only, so that a request read whole a moment ago is still answered.
      // (Only this thread adds to `active`.)
      active.withLock { table in
        let now = DispatchTime.now().uptimeNanoseconds
        let live = table.values.filter { $0.phase != .evicted }.count
        if live >= Self.maxConnections,
          let oldest = table.filter({ Self.isEvictable($0.value.phase, now: now) }).min(by: {
            $0.value.acceptedAt < $1.value.acceptedAt
          })
        {
          shutdown(oldest.key, Int32(oldest.value.phase == .reading ? SHUT_RD : SHUT_RDWR))
          table[oldest.key]?.phase = .evicted
        }
        table[client] = (now, .reading)
      }
      Thread.detachNewThread { [self] in
        respond(client)
        active.withLock { _ = $0.removeValue(forKey: client) }
        close(client)
      }
    }
  }

  /// Whether `client`'s `/metrics` answer may be written now: there is room, or the oldest answer
  /// written for more than 2 s gives its place (its connection is cut off: a scraper reading a few
  /// bytes at a time kept its place for minutes, and Prometheus got 503 meanwhile).
  func admitScrape(_ client: Int32) -> Bool {
    metricsAnswers.withLock { answers in
      let now = DispatchTime.now().uptimeNanoseconds
      if answers.count >= Self.maxMetricsAnswers {
        let deadline = UInt64(Self.requestDeadlineMs) * 1_000_000
        guard let oldest = answers.filter({ now &- $0.value >= deadline }).min(by: { $0.value < $1.value })
        else { return false }
        shutdown(oldest.key, Int32(SHUT_RDWR))
        answers[oldest.key] = nil
      }
      answers[client] = now
      return true
    }
  }

  /// Whether `request` holds its blank line: CR LF CR LF, or lines ended by a bare LF, which RFC
  /// 9112 lets a server accept (`printf 'GET /healthz HTTP/1.0\n\n' | nc`, a common health check,
  /// got no answer).
  static func headersEnd(_ request: [UInt8]) -> Bool {
    var index = request.startIndex
    while let newline = request[index...].firstIndex(of: 10) {
      let next = newline + 1
      if next < request.count, request[next] == 10 { return true }
      if next + 1 < request.count, request[next] == 13, request[next + 1] == 10 { return true }
      index = next
    }
    return false
  }

  /// Reads one request from `client` (within `requestDeadlineMs` in all, however it trickles in)
  /// and answers it.
  func respond(_ client: Int32) {
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(Self.requestDeadlineMs) * 1_000_000
    var request: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    var complete = false
    while request.count < 65536 {
      let now = DispatchTime.now().uptimeNanoseconds
      guard now < deadline else { return }
      var entry = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
      let ready = poll(&entry, 1, Int32((deadline - now) / 1_000_000) + 1)
      if ready < 0 && errno == EINTR { continue }
      guard ready > 0 else { return }
      let count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress!, $0.count, 0) }
      if count <= 0 { break }
      request += buffer[0..<count]
      complete = Self.headersEnd(request)
      if complete { break }
    }
    // Read: the answer has its own time before the connection may be cut off. One cut off before
    // its request came whole gets no answer.
    let cutOff = active.withLock { table -> Bool in
      if table[client]?.phase == .reading {
        table[client]?.phase = .answering(since: DispatchTime.now().uptimeNanoseconds)
      }
      return table[client]?.phase == .evicted
    }
    if cutOff, !complete { return }
    let line = String(decoding: request.prefix(while: { $0 != 13 && $0 != 10 }), as: UTF8.self)
    let parts = line.split(separator: " ")
    var status = "404 Not Found"
    var body = Array("not found\n".utf8)
    var type = "text/plain; charset=utf-8"
    var allow = ""
    // HEAD as GET without the body (uptime probes use it; RFC 9110 asks every server for it).
    let isHead = parts.first == "HEAD"
    var scraping = false
    defer { if scraping { metricsAnswers.withLock { _ = $0.removeValue(forKey: client) } } }
    if parts.count < 2 {
      // A request line without its target (`GET` alone) is malformed, not a method refused.
      status = "400 Bad Request"
      body = Array("bad request\n".utf8)
    } else if parts[0] == "GET" || isHead {
      let path = Self.path(of: parts[1])
      if path == "/metrics", !admitScrape(client) {
        status = "503 Service Unavailable"
        body = Array(
          "\(Self.maxMetricsAnswers) /metrics answers are being written already; try again\n".utf8)
      } else if path == "/metrics" {
        // Admitted: `admitScrape` recorded it.
        scraping = true
        status = "200 OK"
        body =
          registry.emitToBuffer() + Array(CounterStore.shared.prometheusText().utf8)
          + Array(health.prometheusText().utf8) + Array(sampled().utf8)
        type = "text/plain; version=0.0.4; charset=utf-8"
      } else if path == "/healthz" || path == "/readyz" {
        let probe = health.probe(readiness: path == "/readyz")
        status = probe.passes ? "200 OK" : "503 Service Unavailable"
        body = Array(probe.body.utf8)
      }
    } else {
      status = "405 Method Not Allowed"
      body = Array("method not allowed\n".utf8)
      allow = "Allow: GET, HEAD\r\n"
    }
    let head =
      "HTTP/1.1 \(status)\r\n\(allow)Content-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
    let response = Array(head.utf8) + (isHead ? [] : body)
    var offset = 0
    while offset < response.count {
      let sent = response.withUnsafeBytes {
        send(client, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
      }
      if sent <= 0 { break }
      offset += sent
    }
  }
}
