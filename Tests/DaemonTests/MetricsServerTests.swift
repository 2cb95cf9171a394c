import Foundation
import Prometheus
import RulesEngine
import Synchronization
import TestSupport
import Testing

@testable import Daemon

struct MetricsServerTests {
  /// Out of descriptors, the server waits and accepts again: its thread ended at the first failed
  /// accept, and /healthz never answered again (a liveness probe's restart loop).
  @Test func aFailedAcceptWaitsUnlessTheSocketIsClosed() {
    #expect(MetricsServer.afterFailedAccept(EMFILE) == .wait)
    #expect(MetricsServer.afterFailedAccept(ENFILE) == .wait)
    #expect(MetricsServer.afterFailedAccept(ECONNABORTED) == .wait)
    #expect(MetricsServer.afterFailedAccept(EINTR) == .again)
    #expect(MetricsServer.afterFailedAccept(EBADF) == .stop)
    #expect(MetricsServer.afterFailedAccept(EINVAL) == .stop)
  }

  /// A request target in absolute form (RFC 9112 asks every server to take it) names the same
  /// path as its origin form; the query is no part of it.
  @Test func aTargetsPathIsFoundInEitherForm() {
    #expect(MetricsServer.path(of: "/metrics?x=1") == "/metrics")
    #expect(MetricsServer.path(of: "http://127.0.0.1:9090/healthz") == "/healthz")
    #expect(MetricsServer.path(of: "http://127.0.0.1:9090") == "/")
    #expect(MetricsServer.path(of: "/a://b") == "/a://b")
  }

  /// A request's blank line: CR LF CR LF, or bare LFs (RFC 9112 lets a server take them; `printf
  /// 'GET /healthz HTTP/1.0\n\n' | nc` got no answer), not yet within a line or after one line end.
  @Test func aRequestEndsAtItsBlankLineHoweverLinesEnd() {
    for ended in [
      "GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.0\n\n", "GET / HTTP/1.1\nHost: x\n\n", "GET /\n\r\n",
    ] {
      #expect(MetricsServer.headersEnd(Array(ended.utf8)), "\(ended)")
    }
    for open in ["GET / HTTP/1.0\r\n", "GET / HTTP/1.0\n", "GET / HTTP/1.1\r\nHost: x\r\n\r", ""] {
      #expect(!MetricsServer.headersEnd(Array(open.utf8)), "\(open)")
    }
  }

  /// Scrapers that ask for /metrics and read it slowly do not keep a probe out: a few are answered
  /// at once, the others refused at once (503). With thousands of rules (/metrics of 1.4 MB),
  /// 30 such clients a second held all 16 connections, each for its 2 s, and /healthz waited up
  /// to 6.5 s, past a Kubernetes probe's 1 s.
  @Test(.timeLimit(.minutes(2))) func slowScrapersDoNotKeepAProbeOut() async throws {
    let big = String(repeating: "iotrules_test_padding_total 1\n", count: 200_000)
    let server = try MetricsServer(port: 0, registry: PrometheusCollectorRegistry(), sampled: { big })
    server.start()
    defer { server.stop() }
    var scrapers: [Int32] = []
    defer { for fd in scrapers { close(fd) } }
    let request = Array("GET /metrics HTTP/1.0\r\n\r\n".utf8)
    for _ in 0..<40 {
      let fd = ProcessSupport.connected(port: server.port, receiveBuffer: 4096)
      #expect(fd >= 0)
      _ = request.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
      scrapers.append(fd)
    }
    try await Task.sleep(nanoseconds: 300_000_000)
    var slowest = 0.0
    for _ in 0..<3 {
      let started = Date()
      #expect(try fetch("http://127.0.0.1:\(server.port)/healthz").0 == 200)
      slowest = max(slowest, Date().timeIntervalSince(started))
    }
    #expect(slowest < 1, "a probe waited \(slowest) s behind slow scrapers")
    // The refused ones were told so, at once.
    var answer = [UInt8](repeating: 0, count: 64)
    let refused = scrapers.filter { fd in
      let count = recv(fd, &answer, answer.count, Int32(MSG_DONTWAIT))
      return count > 0 && String(decoding: answer[0..<count], as: UTF8.self).hasPrefix("HTTP/1.1 503")
    }
    #expect(refused.count >= 40 - MetricsServer.maxMetricsAnswers - 1, "\(refused.count) refused")
  }

  /// Scrapers that read a little at a time, never slow enough for a write to time out, do not
  /// keep Prometheus out: once their answers have taken 2 s, a new scrape takes the oldest one's
  /// place (it got 503 for as long as they read).
  @Test(.timeLimit(.minutes(2))) func aNewScrapeTakesTheOldestSlowAnswersPlace() async throws {
    let big = String(repeating: "iotrules_test_padding_total 1\n", count: 200_000)
    let server = try MetricsServer(port: 0, registry: PrometheusCollectorRegistry(), sampled: { big })
    server.start()
    defer { server.stop() }
    let request = Array("GET /metrics HTTP/1.0\r\n\r\n".utf8)
    let stop = Atomic<Bool>(false)
    var readers: [Thread] = []
    for _ in 0..<MetricsServer.maxMetricsAnswers {
      let fd = ProcessSupport.connected(port: server.port, receiveBuffer: 4096)
      #expect(fd >= 0)
      _ = request.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
      // 4 KB every 200 ms, for 10 s at most: each write goes on well within its 2 s.
      let reader = Thread {
        var buffer = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<50 where !stop.load(ordering: .relaxed) {
          if recv(fd, &buffer, buffer.count, 0) <= 0 { break }
          usleep(200_000)
        }
        close(fd)
      }
      reader.start()
      readers.append(reader)
    }
    defer { stop.store(true, ordering: .relaxed) }
    try await Task.sleep(nanoseconds: 2_500_000_000)
    let (status, body) = try fetch("http://127.0.0.1:\(server.port)/metrics")
    #expect(status == 200 && body.contains("iotrules_test_padding_total"), "\(status)")
  }

  @Test func servesMetricsAndHealth() async throws {
    let folder = temporaryFolder("metrics")
    write(
      #"{"sql": "SELECT * FROM 'm/+'", "actions": [{"file": {"path": "out/${topic(2)}.jsonl"}}]}"#,
      to: folder + "/rules/metered.json")
    write(
      #"{"sql": "SELECT x FROM 'f/+'", "actions": [{"file": {"path": "out/fields.jsonl"}}]}"#,
      to: folder + "/rules/fields.json")
    // r/1's text makes the pattern backtrack without end: the call stops at its step budget.
    write(
      #"{"sql": "SELECT regexp_matches(s, '(a+)+$') AS m FROM 'r/+'", "actions": [{"file": {"path": "out/r.jsonl"}}]}"#,
      to: folder + "/rules/regex.json")
    write(
      #"{"sql": "SELECT * FROM 'm/+'", "ruleDisabled": true, "actions": [{"file": {"path": "out/off.jsonl"}}]}"#,
      to: folder + "/rules/off.json")
    // f/1's payload is not JSON (0x00 0x01 0x02): the fields rule reads x of it (AWS's ParseError).
    write(
      #"{"topic": "m/a", "payload": {"x": 1}}"# + "\n" + "not json\n"
        + #"{"topic": "m/b", "payload": {"x": 2}}"# + "\n" + #"{"topic": "f/1", "payload_base64": "AAEC"}"#
        + "\n" + #"{"topic": "f/2", "payload": {"x": 3}}"# + "\n"
        + #"{"topic": "r/1", "payload": {"s": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"}}"# + "\n",
      to: folder + "/feed.jsonl")
    let process = try Subprocess(
      [
        "run", "--rules", "rules", "--source", "file:feed.jsonl", "--follow", "--metrics-port", "0",
        "--metrics-address", "127.0.0.1",
      ],
      in: folder)
    var port: Int?
    for _ in 0..<250 where port == nil {
      try await Task.sleep(nanoseconds: 20_000_000)
      if let range = process.stderr.range(of: "metrics on http://127.0.0.1:") {
        port = Int(process.stderr[range.upperBound...].prefix(while: { $0.isNumber }))
      }
    }
    let metricsPort = try #require(port, "\(process.stderr)")
    // Until the five messages are through (the port is said before the rules load; on a loaded
    // machine that and the lines took past a fixed 300 ms): at most about 30 s.
    for _ in 0..<300 {
      let (_, text) = (try? fetch("http://127.0.0.1:\(metricsPort)/metrics")) ?? (0, "")
      if text.contains("iotrules_message_latency_seconds_count 5\n") { break }
      try await Task.sleep(nanoseconds: 50_000_000)
    }
    // Answering before the rules load: 10,000 rules with tests took 7 s, and probes got no answer
    // at all meanwhile instead of `/readyz`'s "starting".
    let answering = try #require(process.stderr.range(of: "metrics on http://"))
    let loaded = try #require(process.stderr.range(of: "rules loaded"), "\(process.stderr)")
    #expect(answering.lowerBound < loaded.lowerBound, "\(process.stderr)")
    let (healthStatus, health) = try fetch("http://127.0.0.1:\(metricsPort)/healthz")
    #expect(healthStatus == 200 && health.hasPrefix("ok"))
    #expect(try fetch("http://127.0.0.1:\(metricsPort)/readyz") == (200, "ready\n\n"))
    let (status, metrics) = try fetch("http://127.0.0.1:\(metricsPort)/metrics")
    #expect(status == 200)
    #expect(metrics.contains(#"iotrules_rule_matched_total{rule="metered"} 2"#), "\(metrics)")
    #expect(metrics.contains(#"iotrules_action_succeeded_total{rule="metered",action="file[0]"} 2"#))
    #expect(metrics.contains(#"iotrules_rule_evaluation_errors_total{rule="fields"} 1"#), "\(metrics)")
    #expect(metrics.contains(#"iotrules_rule_evaluation_errors_total{rule="metered"} 0"#), "\(metrics)")
    // With the message's origin (a Kafka record's topic/partition@offset), apart from the payload's
    // byte offset.
    let warning = "rule 'fields' reads fields of a payload that is not JSON (the message from "
    for _ in 0..<500 where !process.stderr.contains(warning) { try await Task.sleep(nanoseconds: 10_000_000) }
    #expect(process.stderr.contains(warning), "\(process.stderr)")
    #expect(process.stderr.contains(", topic 'f/1'; in its payload, offset 0: "), "\(process.stderr)")
    #expect(metrics.contains("iotrules_messages_received_total 5"))
    #expect(metrics.contains("iotrules_rule_files_failing 0\n"), "\(metrics)")
    #expect(metrics.contains("iotrules_rule_reloads_total{outcome=\"errors\"} 0\n"), "\(metrics)")
    // Every family says what it counts.
    for line in metrics.split(separator: "\n") where line.hasPrefix("# TYPE ") {
      let name = line.split(separator: " ")[2]
      #expect(metrics.contains("# HELP \(name) "), "no HELP for \(name)")
    }
    // HEAD answers as GET, without the body.
    #expect(try fetch("http://127.0.0.1:\(metricsPort)/metrics", method: "HEAD") == (200, "\n"))
    #expect(metrics.contains("iotrules_replay_malformed_lines_total 1"), "\(metrics)")
    #expect(metrics.contains("iotrules_message_latency_seconds_bucket{le=\"+Inf\"} 5\n"), "\(metrics)")
    #expect(metrics.contains("iotrules_message_latency_seconds_count 5\n"))
    #expect(metrics.contains("iotrules_regex_budget_overruns_total 1\n"), "\(metrics)")
    // Said with its rule and message (it named neither: which rule's results lacked a field?).
    let overrun =
      "rule 'regex': 1 regular-expression match(es) stopped by the step budget, the last for the message from feed.jsonl:6 (topic 'r/1')"
    for _ in 0..<500 where !process.stderr.contains(overrun) { try await Task.sleep(nanoseconds: 10_000_000) }
    #expect(process.stderr.contains(overrun), "\(process.stderr)")
    #expect(metrics.contains("# TYPE iotrules_queue_depth gauge\niotrules_queue_depth 0\n"), "\(metrics)")
    #expect(metrics.contains("iotrules_ready 1\n") && metrics.contains("iotrules_healthy 1\n"), "\(metrics)")
    // The process's own gauges, as client libraries name them, and the build.
    // A disabled rule is loaded, and shows as such.
    #expect(metrics.contains("iotrules_rules_loaded 4\n"), "\(metrics)")
    #expect(metrics.contains("iotrules_rules_disabled 1\n"), "\(metrics)")
    #expect(metrics.contains("iotrules_build_info{version=\"\(IoTRulesVersion.current)\"} 1\n"), "\(metrics)")
    func gauge(_ name: String) -> Double? {
      metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap {
        Double($0.split(separator: " ")[1])
      }
    }
    let processStart = try #require(gauge("process_start_time_seconds"))
    #expect(abs(processStart - Date().timeIntervalSince1970) < 120, "\(processStart)")
    #expect((gauge("process_open_fds") ?? 0) > 3 && (gauge("process_max_fds") ?? 0) >= 64)
    #expect((gauge("process_resident_memory_bytes") ?? 0) > 1_000_000)
    #expect(gauge("process_cpu_seconds_total") != nil)
    #expect(try fetch("http://127.0.0.1:\(metricsPort)/nothing").0 == 404)
    // A request line without its target is a bad request (it said 405), and the absolute form of a
    // target is taken (it said 404).
    let raw = { (request: String) in
      try python3Output(
        "import socket,sys\ns=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=5)\ns.sendall(sys.argv[2].encode())\nprint(s.recv(200).decode().split('\\r\\n')[0])",
        ["\(metricsPort)", request])
    }
    #expect(try raw("GET\r\n\r\n").hasPrefix("HTTP/1.1 400"))
    #expect(try raw("GET http://127.0.0.1:\(metricsPort)/healthz HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 200"))
    // Clients that connect and send nothing do not hold up a probe: each connection is answered
    // on its own (one at a time, five silent ones took 2 s each before the probe's turn).
    // Nor do more of them than the connections answered at once (16): the one that has waited
    // longest for its request gives its place to the probe (at 16, a probe waited 1.8 s, and ten
    // seconds, past any probe's timeout, behind clients that kept reconnecting).
    // Sixty of them: without the eviction the probe waits behind three rounds of their 2 s
    // deadlines (about 5.8 s), far from the bound, which leaves room for a loaded machine.
    let silent = (0..<60).map { _ in ProcessSupport.connected(port: metricsPort) }
    defer { for fd in silent where fd >= 0 { close(fd) } }
    #expect(silent.allSatisfy { $0 >= 0 })
    try await Task.sleep(nanoseconds: 200_000_000)
    let started = Date()
    #expect(try fetch("http://127.0.0.1:\(metricsPort)/healthz").0 == 200)
    #expect(Date().timeIntervalSince(started) < 4, "the probe waited behind silent clients")
    process.signal(SIGINT)
    #expect(await process.wait(seconds: 30) == 0)
    #expect(process.stdout.contains("5 messages"))
  }

  /// The port a daemon started with `--metrics-port 0` says it serves on.
  func metricsPort(of process: Subprocess) async throws -> Int {
    for _ in 0..<500 {
      if let range = process.stderr.range(of: "metrics on http://127.0.0.1:"),
        let port = Int(process.stderr[range.upperBound...].prefix(while: { $0.isNumber }))
      {
        return port
      }
      try await Task.sleep(nanoseconds: 20_000_000)
    }
    throw TestPeerError("no metrics port in: \(process.stderr)")
  }

  /// Polls `url` (at most 15 s) until `accept` takes its answer; returns the last answer.
  func poll(_ url: String, until accept: (Int, String) -> Bool) async throws -> (Int, String) {
    var answer = try fetch(url)
    for _ in 0..<75 where !accept(answer.0, answer.1) {
      try await Task.sleep(nanoseconds: 200_000_000)
      answer = try fetch(url)
    }
    return answer
  }

  /// `/readyz` follows the broker: not ready while the MQTT source (and the republish connection)
  /// are away, ready once they are back; `/healthz` stays 200 meanwhile (a restart would not bring
  /// the broker back).
  @Test(.timeLimit(.minutes(2))) func readinessFollowsTheBroker() async throws {
    let broker = try MosquittoBroker()
    defer { broker.stop() }
    let folder = temporaryFolder("readiness")
    write(
      #"{"sql": "SELECT * FROM 'r/+'", "actions": [{"file": {"path": "out/${topic(2)}.jsonl"}}]}"#,
      to: folder + "/rules/ready.json")
    let process = try Subprocess(
      ["run", "--rules", "rules", "--source", broker.url, "--metrics-port", "0"], in: folder)
    let port = try await metricsPort(of: process)
    let readyz = "http://127.0.0.1:\(port)/readyz"
    #expect(try await poll(readyz) { status, _ in status == 200 } == (200, "ready\n\n"), "\(process.stderr)")
    broker.stop()
    let away = try await poll(readyz) { status, body in status == 503 && body.contains("mqtt source") }
    #expect(away.0 == 503)
    #expect(away.1.hasPrefix("not ready\n"), "\(away.1)")
    // Disconnected, or, when the poll comes late (a loaded machine), its first reconnect failed.
    #expect(
      away.1.contains("mqtt source \(broker.url): disconnected from \(broker.url)")
        || away.1.contains("mqtt source \(broker.url): cannot reconnect to \(broker.url)"), "\(away.1)")
    #expect(try fetch("http://127.0.0.1:\(port)/healthz") == (200, "ok\n\n"))
    // The same as gauges, for alerts.
    let metrics = try fetch("http://127.0.0.1:\(port)/metrics").1
    #expect(metrics.contains("iotrules_ready 0\n") && metrics.contains("iotrules_healthy 1\n"), "\(metrics)")
    #expect(
      metrics.contains(
        #"iotrules_health_problem{component="mqtt source \#(broker.url)",level="not_ready"} 1"#),
      "\(metrics)")
    try broker.restart()
    #expect(try await poll(readyz) { status, _ in status == 200 }.0 == 200, "\(process.stderr)")
    process.signal(SIGTERM)
    #expect(await process.wait(seconds: 30) == 0)
  }
}
