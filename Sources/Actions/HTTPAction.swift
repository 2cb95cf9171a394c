import AsyncHTTPClient
import Foundation
import IoTSQL
import NIOCore
import NIOHTTP1
import NIOPosix
import RulesEngine
import Synchronization

/// The `http` action: the Lambda-style webhook, as AWS IoT's HTTPS action.
///
/// Rule file: `{"http": {"url": "https://hooks.example/${topic(2)}", "confirmationUrl":
/// "https://hooks.example/", "headers": [{"key": "Authorization", "value": "Bearer ${get_secret('hook')}"}],
/// "timeoutMs": 3000, "batch": {"maxSize": 10, "maxDelayMs": 20, "maxBytes": 5120}}}`.
///
/// It POSTs the result as `application/json`, or `application/octet-stream` when the result is not
/// JSON, unless a `content-type` header says otherwise. Outcomes: 2xx succeeds; 429 and 5xx, a refused
/// or broken connection and a timeout are transient (the error carries the peer's `Retry-After`, for
/// the action's retry policy to honour); other statuses are permanent. A templated URL must render to
/// a URL starting with `confirmationUrl`; a header value that renders a control character (CR, LF...) is refused
/// (permanent). Unlike AWS, plain `http://` and any port are allowed (for local services and tests).
///
/// Batching follows AWS's HTTP batching: results of one topic for the same URL and headers (of
/// any topic with `acrossTopics`, AWS's `batchAcrossTopics`) are collected until `maxSize` results,
/// `maxBytes` bytes of body or `maxDelayMs` after the first, and POSTed as one JSON array; each
/// result of the batch gets the batch's outcome. Results that are not JSON are sent alone. The
/// dispatcher hands the action one topic's queued results at once (`KeyedGroupAction`), so they
/// go into the open batches together, while topics still run concurrently.
public final class HTTPAction: KeyedGroupAction {
  /// Batching limits (AWS's defaults).
  public struct Batch: Decodable, Sendable, Equatable {
    /// Most results in one request (default 10).
    public var maxSize: Int
    /// Longest wait after the first result before sending, in milliseconds (default 20).
    public var maxDelayMs: Int
    /// Largest body in bytes (default 5120); a single larger result is sent alone.
    public var maxBytes: Int
    /// Whether results of different topics may share a request (default false: as AWS's
    /// `batchAcrossTopics`, a request carries one topic's results).
    public var acrossTopics: Bool

    /// Creates limits.
    public init(maxSize: Int = 10, maxDelayMs: Int = 20, maxBytes: Int = 5120, acrossTopics: Bool = false) {
      self.maxSize = maxSize
      self.maxDelayMs = maxDelayMs
      self.maxBytes = maxBytes
      self.acrossTopics = acrossTopics
    }

    private enum CodingKeys: String, CodingKey { case maxSize, maxDelayMs, maxBytes, acrossTopics }

    /// Decodes with the defaults above.
    public init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      maxSize = try container.decodeIfPresent(Int.self, forKey: .maxSize) ?? 10
      maxDelayMs = try container.decodeIfPresent(Int.self, forKey: .maxDelayMs) ?? 20
      maxBytes = try container.decodeIfPresent(Int.self, forKey: .maxBytes) ?? 5120
      acrossTopics = try container.decodeIfPresent(Bool.self, forKey: .acrossTopics) ?? false
    }
  }

  /// The action's settings as written in a rule file.
  public struct Configuration: Decodable, Sendable, Equatable {
    /// URL template (required), `http://` or `https://`.
    public var url: String
    /// The prefix a rendered URL must start with; required when `url` is a template.
    public var confirmationUrl: String?
    /// Request headers, in order; values are templates (`get_secret()` reaches secrets).
    public var headers: [RepublishAction.KeyValue]
    /// Request timeout in milliseconds (default 3000).
    public var timeoutMs: Int
    /// Batching; none by default.
    public var batch: Batch?

    /// Creates a configuration.
    public init(
      url: String, confirmationUrl: String? = nil, headers: [RepublishAction.KeyValue] = [],
      timeoutMs: Int = 3000,
      batch: Batch? = nil
    ) {
      self.url = url
      self.confirmationUrl = confirmationUrl
      self.headers = headers
      self.timeoutMs = timeoutMs
      self.batch = batch
    }

    private enum CodingKeys: String, CodingKey {
      case url, confirmationUrl, headers, timeoutMs, batch, enableBatching, batchConfig, auth
    }

    /// AWS's spelling of the batch settings (`enableBatching`, `batchConfig` with `maxBatchSize`,
    /// `maxBatchOpenMs`, `maxBatchSizeBytes`, `batchAcrossTopics`), so an AWS http action ports by
    /// copying; any other key in `batchConfig` is refused at its place.
    private struct AWSBatchConfig: Decodable {
      var maxBatchSize: Int?
      var maxBatchOpenMs: Int?
      var maxBatchSizeBytes: Int?
      var batchAcrossTopics: Bool?

      private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
      }

      static let keys = ["maxBatchSize", "maxBatchOpenMs", "maxBatchSizeBytes", "batchAcrossTopics"]

      init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        for key in container.allKeys where !Self.keys.contains(key.stringValue) {
          throw DecodingError.dataCorruptedError(
            forKey: key, in: container,
            debugDescription:
              "unknown key '\(RuleFile.escapedName(key.stringValue))'; expected \(Self.keys.joined(separator: ", "))"
          )
        }
        maxBatchSize = try container.decodeIfPresent(Int.self, forKey: Key(stringValue: "maxBatchSize"))
        maxBatchOpenMs = try container.decodeIfPresent(Int.self, forKey: Key(stringValue: "maxBatchOpenMs"))
        maxBatchSizeBytes = try container.decodeIfPresent(
          Int.self, forKey: Key(stringValue: "maxBatchSizeBytes"))
        batchAcrossTopics = try container.decodeIfPresent(
          Bool.self, forKey: Key(stringValue: "batchAcrossTopics"))
      }
    }

    /// Whether the batch settings were written in AWS's spelling (problems then name its keys).
    var batchInAWSSpelling = false
    /// Whether AWS's `auth` (SigV4 signing) was written: a problem, judged with the others.
    var asksForSigV4 = false
    /// Whether `batch` and AWS's `enableBatching`/`batchConfig` were both written: one of them would
    /// be ignored, so it is a problem.
    var mixesBatchSpellings = false

    /// Decodes with the defaults above.
    public init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      url = try container.decode(String.self, forKey: .url)
      confirmationUrl = try container.decodeIfPresent(String.self, forKey: .confirmationUrl)
      headers = try container.decodeIfPresent([RepublishAction.KeyValue].self, forKey: .headers) ?? []
      timeoutMs = try container.decodeIfPresent(Int.self, forKey: .timeoutMs) ?? 3000
      asksForSigV4 = container.contains(.auth)
      batch = try container.decodeIfPresent(Batch.self, forKey: .batch)
      mixesBatchSpellings =
        batch != nil && (container.contains(.enableBatching) || container.contains(.batchConfig))
      if batch == nil, try container.decodeIfPresent(Bool.self, forKey: .enableBatching) == true {
        let aws = try container.decodeIfPresent(AWSBatchConfig.self, forKey: .batchConfig)
        let defaults = Batch()
        batch = Batch(
          maxSize: aws?.maxBatchSize ?? defaults.maxSize,
          maxDelayMs: aws?.maxBatchOpenMs ?? defaults.maxDelayMs,
          maxBytes: aws?.maxBatchSizeBytes ?? defaults.maxBytes,
          acrossTopics: aws?.batchAcrossTopics ?? defaults.acrossTopics)
        batchInAWSSpelling = true
      }
    }

    /// Checks the URL rules, the headers and the limits. Throws the first problem, carrying the
    /// others.
    public func validate() throws(ActionSettingsError) {
      var problems = SettingsProblems()
      check(into: &problems)
      try problems.throwIfAny()
    }

    /// Notes every problem `validate` reports.
    func check(into problems: inout SettingsProblems) {
      if mixesBatchSpellings {
        problems.add(
          field: "http.batch",
          "give 'batch' or AWS's 'enableBatching' and 'batchConfig', not both (one would be ignored)")
      }
      if asksForSigV4 {
        problems.add(
          field: "http.auth",
          "AWS's SigV4 request signing is not supported: send a credential in a header instead (\"headers\": [{\"key\": \"Authorization\", \"value\": \"Bearer ${get_secret('hook')}\"}])"
        )
      }
      // A scheme's case does not matter (RFC 3986 3.1): `HTTPS://` is `https://`.
      func isHTTP(_ text: String) -> Bool {
        let lowered = HTTPAction.schemeLowercased(text)
        return lowered.hasPrefix("https://") || lowered.hasPrefix("http://")
      }
      // One problem a field: a URL that is not HTTP is not judged further.
      let urlIsHTTP = isHTTP(url)
      if !urlIsHTTP {
        problems.add(field: "http.url", "must start with https:// or http://")
      } else if url.utf8.count > 2000 {
        problems.add(field: "http.url", "is longer than 2000 characters")
      } else {
        let host = URLComponents(string: url)?.host
        if !url.contains("${"), host?.isEmpty != false {
          // A constant url that does not parse fails every message at run time.
          problems.add(field: "http.url", "is not a valid URL")
        } else if let host, let problem = ActionSettingsError.placeholderHostProblem(host) {
          problems.add(field: "http.url", problem)
        }
      }
      if let confirmationUrl {
        if !isHTTP(confirmationUrl) {
          problems.add(field: "http.confirmationUrl", "must start with https:// or http://")
        } else if confirmationUrl.contains("${") {
          problems.add(
            field: "http.confirmationUrl",
            "cannot be a template here: AWS checks a rendered one against topic rule destinations confirmed by hand, and iotrules has none, so a value would choose the host; give the fixed start of every rendered url, scheme and host at least (https://hooks.example.com/), and a url whose host comes from the message as one action per host"
          )
        } else if URLComponents(string: confirmationUrl)?.host?.isEmpty != false {
          problems.add(
            field: "http.confirmationUrl",
            "is not a valid URL: give its scheme and host at least (https://hooks.example.com/)")
        } else if urlIsHTTP,
          !HTTPAction.schemeLowercased(url).startsExactly(with: HTTPAction.schemeLowercased(confirmationUrl))
        {
          // As written, a template too (AWS: "The value of the confirmation URL must be a prefix
          // of the endpoint URL"): `https://${topic(2)}/x` passed beside `https://hooks.example.com`,
          // and every message whose value did not rebuild that host was refused. Bytes, as each
          // rendered url is judged at run time.
          problems.add(field: "http.url", "must start with confirmationUrl '\(confirmationUrl)'")
        }
      } else if url.contains("${") {
        problems.add(field: "http.confirmationUrl", "is required when url is a template")
      }
      // What the text itself makes certain for every message (each `${…}` read as `x`).
      for (field, text) in [("http.url", url), ("http.confirmationUrl", confirmationUrl)] {
        guard let text, isHTTP(text), let probe = TemplateProbe.probe(text) else { continue }
        if let problem = TemplateProbe.controlCharacterProblem(text) {
          problems.add(field: field, "\(problem): every request would go elsewhere, or be refused")
          continue
        }
        let authority = probe.drop { $0 != "/" }.dropFirst(2).prefix { !"/?#".contains($0) }
        if authority.contains("@") {
          problems.add(
            field: field,
            "holds credentials (user:password@), which are not sent: give them in a header instead (\"headers\": [{\"key\": \"Authorization\", \"value\": \"Basic ${get_secret('hook')}\"}])"
          )
        } else if authority.hasSuffix(":") {
          problems.add(field: field, "gives no port after ':'")
        } else if let problem = HTTPAction.portProblem(URLComponents(string: probe)) {
          problems.add(field: field, problem)
        } else if probe.contains("#") {
          problems.add(
            field: field, "has a fragment ('#'), which is never sent: every request would be refused")
        }
      }
      if headers.count > 100 { problems.add(field: "http.headers", "at most 100 headers") }
      for (index, header) in headers.enumerated() {
        if header.key.isEmpty || header.key.utf8.count > 256
          || !header.key.utf8.allSatisfy(HTTPAction.isTokenByte)
        {
          problems.add(field: "http.headers[\(index)].key", "'\(header.key)' is not a valid header name")
        } else if ["content-length", "transfer-encoding"].contains(header.key.lowercased()) {
          // The request's framing, which the client writes.
          problems.add(
            field: "http.headers[\(index)].key",
            "'\(header.key)' is set by the client from the body, not by a rule")
        } else if header.key.lowercased() == "host", header.value.contains("${") {
          // A message would choose the virtual host behind the confirmed address (a constant one,
          // for a URL given by its IP address, is the operator's own).
          problems.add(
            field: "http.headers[\(index)].value",
            "a Host header cannot be a template: a message would choose the host")
        } else if let name = HTTPAction.singleValued[header.key.lowercased()],
          headers[..<index].contains(where: { $0.key.lowercased() == header.key.lowercased() })
        {
          // Both would go out, and the server take either (two Hosts: a 400, RFC 9112).
          problems.add(
            field: "http.headers[\(index)].key",
            "a second \(name) header: it holds one value, so a server would take either or refuse the request"
          )
        }
        // The value's own text, as every message would render it.
        if let probe = TemplateProbe.probe(header.value), HTTPAction.hasControlCharacter(probe) {
          problems.add(
            field: "http.headers[\(index)].value",
            "holds a control character (such as CR or LF), which a header value must not")
        }
      }
      if !(1...60_000).contains(timeoutMs) {
        problems.add(field: "http.timeoutMs", "must be between 1 and 60000, not \(timeoutMs)")
      }
      if let batch {
        // Named as written: `batch.maxSize`, or AWS's `batchConfig.maxBatchSize`.
        let (size, delay, bytes) =
          batchInAWSSpelling
          ? (
            "http.batchConfig.maxBatchSize", "http.batchConfig.maxBatchOpenMs",
            "http.batchConfig.maxBatchSizeBytes"
          )
          : ("http.batch.maxSize", "http.batch.maxDelayMs", "http.batch.maxBytes")
        if !(1...1000).contains(batch.maxSize) {
          problems.add(field: size, "must be between 1 and 1000 (AWS: 2 to 10), not \(batch.maxSize)")
        }
        if !(0...60_000).contains(batch.maxDelayMs) {
          problems.add(field: delay, "must be between 0 and 60000 (AWS: 5 to 200), not \(batch.maxDelayMs)")
        }
        if batch.maxBytes < 2 {
          problems.add(field: bytes, "must be at least 2 (AWS: 100 to 131072), not \(batch.maxBytes)")
        }
      }
    }
  }

  /// The configuration.
  public let configuration: Configuration
  private let secrets: (any SecretStore)?
  private let url: ActionTemplate
  /// Whether the URL template reads a secret: a redirect's Location (which often repeats the URL) is
  /// then not quoted.
  private let urlReadsSecret: Bool
  /// Whether any header reads a secret: an answer's body, which may echo the request, is then not
  /// quoted in error records.
  private let headersReadSecret: Bool
  /// `confirmationUrl` parsed once, for the check of each rendered URL.
  private let confirmed: URLComponents?
  /// `confirmationUrl` as a sent URL starts (``encodingInvalidBytes(_:)``), made once.
  private let confirmationPrefix: String?
  private let headers: [(key: String, value: ActionTemplate)]
  /// Whether the configured headers give a Content-Type, a User-Agent (their names are constants:
  /// known at load, not looked for in each request).
  /// The index in `headers` of the Content-Type header, when one is configured (at most one is).
  private let contentTypeHeader: Int?
  private let givesUserAgent: Bool
  private let client = Mutex<HTTPClient?>(nil)
  /// The connections an action keeps open at once (its URL has one host: a templated one is held
  /// to its `confirmationUrl`'s).
  static let connectionsPerHost = 8
  /// How often a request closed unanswered is sent again within one attempt.
  static let closedResends = 2
  /// One for each of those connections: a request waits here, before its `timeoutMs` starts, for
  /// one that is free. Waiting in the client's pool counted against the request's deadline, so
  /// a burst of topics over a healthy webhook timed out there and was sent twice. The wait lasts
  /// as long as the requests before it take (`--max-in-flight` bounds them, and slows the intake
  /// meanwhile: a slow webhook is waited for, as a slow database is), and ends once the intake has
  /// ended and a request gets no answer: behind a webhook that stopped answering, 1,024 topics
  /// would otherwise reach their error paths 8 a timeout.
  private let connections = Permits(HTTPAction.connectionsPerHost)
  let batcher: HTTPBatcher?
  /// Set by `hurry`: the dispatcher no longer gathers results for a batch (``gathering`` is nil).
  private let hurried = Atomic<Bool>(false)

  /// `http`.
  public var kind: String { "http" }
  /// `HttpAction`, AWS's name.
  public var actionName: String { "HttpAction" }
  /// The URL template.
  public var resource: String { configuration.url }

  /// Validates and compiles the configuration.
  public init(
    configuration: Configuration, version: SQLVersion = .default, variables: [String] = [],
    secrets: (any SecretStore)? = nil
  ) throws(ActionSettingsError) {
    var problems = SettingsProblems()
    configuration.check(into: &problems)
    func compile(_ text: String, _ field: String) -> ActionTemplate? {
      problems.attempt { () throws(ActionSettingsError) in
        try ActionTemplate(text, field: "http.\(field)", version: version, variables: variables)
      }
    }
    let url = compile(configuration.url, "url")
    var headers: [(key: String, value: ActionTemplate)] = []
    for (index, header) in configuration.headers.enumerated() {
      if let value = compile(header.value, "headers[\(index)].value") { headers.append((header.key, value)) }
    }
    try problems.throwIfAny()
    self.configuration = configuration
    self.secrets = secrets
    // As sent (a raw `[` or space made the parser encode it whole, `%20` as `%2520`).
    confirmationPrefix = configuration.confirmationUrl.map(Self.encodingInvalidBytes)
    confirmed = confirmationPrefix.flatMap { URLComponents(string: $0) }
    self.url = url!
    urlReadsSecret = configuration.url.range(of: "get_secret", options: .caseInsensitive) != nil
    headersReadSecret = configuration.headers.contains {
      $0.value.range(of: "get_secret", options: .caseInsensitive) != nil
    }
    self.headers = headers
    contentTypeHeader = headers.firstIndex { $0.key.lowercased() == "content-type" }
    givesUserAgent = headers.contains { $0.key.lowercased() == "user-agent" }
    batcher = configuration.batch.map { HTTPBatcher(limits: $0) }
  }

  /// Creates the HTTP client (a connection pool).
  public func start() async throws {
    var settings = HTTPClient.Configuration()
    settings.timeout = .init(connect: .milliseconds(Int64(configuration.timeoutMs)))
    settings.redirectConfiguration = .disallow
    // A refused or failed connection fails the request at once: the action's own retry policy (with
    // its backoff, then the error path) decides what happens next. The client's default retried
    // connecting until the request timed out, so every attempt on a closed port took `timeoutMs`.
    settings.connectionPool.retryConnectionEstablishment = false
    settings.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = Self.connectionsPerHost
    // An idle connection is closed before common servers close theirs (Node's and Apache's 5 s
    // keep-alive): one they closed first fails the request written to it.
    settings.connectionPool.idleTimeout = .seconds(4)
    let created = HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
    client.withLock { $0 = created }
  }

  /// POSTs the result (alone or in a batch) and returns after a 2xx.
  public func perform(_ input: ActionInput) async throws(ActionError) {
    if let error = await performGroup([input])[0] { throw error }
  }

  /// One topic's results in order: with batching, they go into the open batches together (so a
  /// topic's results share requests, as AWS batches them); without, one POST after another.
  public func performGroup(_ inputs: [ActionInput]) async -> [ActionError?] {
    await performGroup(inputs, failingFast: false)
  }

  /// With batching of one topic's results (not `acrossTopics`), the dispatcher gathers them for
  /// the batch's window before it hands them over, and each group's last batch goes at its end:
  /// a result that came while a batch was open joins it, as in AWS, instead of waiting for it to
  /// be answered and opening a batch of its own. Across topics, the open batches gather instead.
  public var gathering: GroupGathering? {
    guard let batch = configuration.batch, !batch.acrossTopics, !hurried.load(ordering: .relaxed) else {
      return nil
    }
    // A body is `[`, the results joined by `,`, and `]`.
    return GroupGathering(maxCount: batch.maxSize, maxBytes: batch.maxBytes - 1, windowMs: batch.maxDelayMs)
  }

  /// `performGroup(_:)`; with `failingFast`, a transient failure fails the later results unsent.
  public func performGroup(_ inputs: [ActionInput], failingFast: Bool) async -> [ActionError?] {
    await performGroup(inputs, failingFast: { _ in failingFast }, delivered: { _ in })
  }

  /// `performGroup(_:failingFast:)`, telling `delivered` each result answered with a 2xx as soon
  /// as it is (a request's, or a batch's results).
  public func performGroup(
    _ inputs: [ActionInput], failingFast: @Sendable (ActionError) -> Bool, delivered: @Sendable (Int) -> Void
  ) async -> [ActionError?] {
    await performGroup(inputs, gathered: false, failingFast: failingFast, delivered: delivered)
  }

  /// `performGroup(_:failingFast:delivered:)`; a group the dispatcher `gathered` sends its last
  /// batch at its end, where one not gathered (an error action's records, a retry) leaves it open
  /// for others for `maxDelayMs`.
  public func performGroup(
    _ inputs: [ActionInput], gathered: Bool, failingFast: @Sendable (ActionError) -> Bool,
    delivered: @Sendable (Int) -> Void
  ) async -> [ActionError?] {
    var results = [ActionError?](repeating: nil, count: inputs.count)
    var requests: [(index: Int, request: Request)] = []
    for (index, input) in inputs.enumerated() {
      switch prepare(input, secrets: secrets) {
      case .success(let request): requests.append((index, request))
      case .failure(let error): results[index] = error
      }
    }
    // In input order: JSON results go into the batches when batching; anything else is POSTed
    // alone, after the batch holding the results before it has been sent and answered.
    var run: [(index: Int, request: Request)] = []
    func sendRun(flush: Bool) async {
      guard let batcher, !run.isEmpty else { return }
      let outcomes = await batcher.enqueue(run.map(\.request), flush: flush) { request, body in
        await self.send(request, body: body)
      }
      for ((index, request), outcome) in zip(run, outcomes) {
        if case .failure(let error) = await outcome.wait() {
          results[index] = error.about(request.shownURL)
        } else {
          delivered(index)
        }
      }
      run = []
    }
    // Failing fast, after a transient failure (a timeout, a refused connection; a 503 too once the
    // daemon stops) the topic's later results are not sent now but fail with it, to be retried
    // together after the backoff: a webhook that stopped answering costs one timeout per attempt,
    // not one per result.
    var transient: ActionError?
    for (index, request) in requests {
      if let transient {
        var unsent = ActionError(
          .transient, "not sent: an earlier result of this topic failed (\(transient.message))",
          retryAfterMs: transient.retryAfterMs)
        unsent.unsent = true
        unsent.answered = transient.answered
        results[index] = unsent.about(request.shownURL)
        continue
      }
      if batcher != nil && request.isJSON {
        run.append((index, request))
        continue
      }
      await sendRun(flush: true)
      if case .failure(let error) = await send(request, body: request.body) {
        results[index] = error.about(request.shownURL)
        if error.kind == .transient, failingFast(error) { transient = error }
      } else {
        delivered(index)
      }
    }
    // Gathered by the dispatcher already: nothing more of this topic can join before the group ends.
    await sendRun(flush: gathered)
    return results
  }

  /// Why a rendered URL that starts with the confirmation URL's text still leaves its destination,
  /// or nil. A template value can hold URL syntax: `@host:port/...` after the confirmed host turns
  /// it into user information, `..` segments climb out of the confirmed path on the server, `#`
  /// cuts the rest off. So the URL is parsed: scheme, host, port and user information must be the
  /// confirmation URL's, the path must start with its path and have no `.` or `..` segment (also
  /// percent-encoded), and there is no fragment.
  static func destinationProblem(_ rendered: String, confirmed expected: URLComponents?) -> String? {
    guard let url = URLComponents(string: rendered), let host = url.host, !host.isEmpty, let expected else {
      return "is not a valid URL"
    }
    func port(_ components: URLComponents) -> Int? {
      components.port ?? (components.scheme?.lowercased() == "https" ? 443 : 80)
    }
    if url.scheme?.lowercased() != expected.scheme?.lowercased()
      || host.lowercased() != expected.host?.lowercased()
      || port(url) != port(expected) || url.user != expected.user || url.password != expected.password
    {
      return
        "leaves the confirmed destination \(expected.scheme ?? "")://\(expected.host ?? "")\(expected.port.map { ":\($0)" } ?? "")"
    }
    if url.fragment != nil { return "has a fragment ('#'), which cuts off the rest of the URL" }
    // Decoded, and split at `\` too, as some servers do (`..%2F`, `%2E%2E`, `..\`); a `;`
    // parameter does not hide a segment (`..;`, as Tomcat reads it).
    let decoded = url.percentEncodedPath.removingPercentEncoding ?? url.percentEncodedPath
    // Bytes, not Characters: `../\u{301}x` is the segment `..` (the Character `/\u{301}` is no `/`).
    let segments = decoded.utf8.split(omittingEmptySubsequences: false) {
      $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\")
    }.map { segment in
      Substring(
        segment.split(separator: UInt8(ascii: ";"), maxSplits: 1, omittingEmptySubsequences: false).first
          ?? segment[...])
    }
    if segments.contains(where: { $0.isExactlyDot || $0.isExactlyDotDot }) {
      return "has a '.' or '..' path segment"
    }
    if !url.percentEncodedPath.startsExactly(with: expected.percentEncodedPath) {
      return "leaves the confirmed path '\(expected.percentEncodedPath)'"
    }
    return nil
  }

  /// Why `url`'s port cannot be connected to (the client traps on one beyond 65535, or sends to it
  /// modulo 65536), or nil.
  static func portProblem(_ url: URLComponents?) -> String? {
    guard let url else { return nil }
    if let port = url.port {
      return (1...65535).contains(port) ? nil : "gives port \(port), which is not between 1 and 65535"
    }
    // Digits past 64 bits give no port at all: the scheme's own was used.
    guard let text = url.string, let range = url.rangeOfPort, !range.isEmpty else { return nil }
    return "gives port \(text[range]), which is not between 1 and 65535"
  }

  /// One rendered request.
  struct Request: Sendable {
    /// The message's topic: results of different topics share a request only with `acrossTopics`.
    var topic: String
    var url: String
    /// The URL as logs and error records show it: secrets it holds masked (`***`).
    var shownURL: String
    var headers: [(String, String)]
    var body: [UInt8]
    var isJSON: Bool
  }

  /// `url` with every `%` that a substituted value brought in (`ranges`, UTF-8 offsets) sent as
  /// `%25`: a value's `%` is its own character, so `100%` and `a%2Fb` arrive as written, not as a
  /// `/` or a NUL the server would decode (the template's own text keeps its escapes).
  static func escapingPercents(_ url: String, in ranges: [Range<Int>]) -> String {
    guard !ranges.isEmpty, url.utf8.contains(UInt8(ascii: "%")) else { return url }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(url.utf8.count + 8)
    for (offset, byte) in url.utf8.enumerated() {
      bytes.append(byte)
      if byte == UInt8(ascii: "%"), ranges.contains(where: { $0.contains(offset) }) {
        bytes += Array("25".utf8)
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// `url` as a valid URL string, past its authority: a byte no URL may hold there (a space, a
  /// non-ASCII byte, `"`, `<`, `[` and `]`, which only a host's IP literal holds, a `%` that
  /// begins no escape) percent-encoded, the escapes it has kept. Given a string with one
  /// such byte, the URL parser encoded the whole string, every `%` with it: a value's `50% fan`
  /// went out as `50%2525%20fan`, which the server read as `50%25 fan`, and a template's
  /// `?filter[a]=x%20y` sent `x%2520y`.
  static func encodingInvalidBytes(_ url: String) -> String {
    let bytes = Array(url.utf8)
    // The authority ends at the first `/`, `?` or `#` after `scheme://`.
    var start = 0
    if let scheme = url.utf8.firstRange(of: "://".utf8) {
      start = url.utf8.distance(from: url.utf8.startIndex, to: scheme.upperBound)
      while start < bytes.count, !"/?#".utf8.contains(bytes[start]) { start += 1 }
    }
    guard let first = (start..<bytes.count).first(where: { !Self.keptInURL(bytes, $0) }) else { return url }
    var out = Array(bytes[..<first])
    let hex = Array("0123456789ABCDEF".utf8)
    for index in first..<bytes.count {
      let byte = bytes[index]
      if Self.keptInURL(bytes, index) {
        out.append(byte)
      } else {
        out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// Whether the byte at `index` may stand as it is in a URL's path, query or fragment (RFC 3986:
  /// unreserved, reserved but `[` and `]`, and `%` beginning an escape).
  private static func keptInURL(_ bytes: [UInt8], _ index: Int) -> Bool {
    let byte = bytes[index]
    guard byte == UInt8(ascii: "%") else { return urlBytes.contains(byte) }
    return index + 2 < bytes.count && isHexDigit(bytes[index + 1]) && isHexDigit(bytes[index + 2])
  }

  /// Whether `byte` is an ASCII hex digit, either case.
  private static func isHexDigit(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
      || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
  }

  /// The bytes a URL's path, query and fragment hold as they are (RFC 3986's unreserved and
  /// reserved characters but `[` and `]`, gen-delims of an IP literal host only: the URL parser
  /// takes neither there).
  private static let urlBytes = Set(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#@!$&'()*+,;=".utf8)

  /// Whether a header value holds a control character other than a tab (RFC 9110: visible
  /// characters, spaces and tabs): CR or LF would inject headers, the client refuses the others.
  static func hasControlCharacter(_ value: String) -> Bool {
    value.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }
  }

  /// Whether `byte` may be in a header name (an RFC 9110 token: letters, digits and
  /// ``!#$%&'*+-.^_`|~``). The client traps on a name outside ASCII.
  static func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"):
      return true
    default:
      return tokenSymbols.contains(byte)
    }
  }

  /// The headers a request holds once (RFC 9110: no list of values), by lower-cased name.
  static let singleValued = Dictionary(
    uniqueKeysWithValues: ["Host", "Content-Type", "Authorization", "Proxy-Authorization", "User-Agent"].map {
      ($0.lowercased(), $0)
    })

  /// The symbols a token may hold besides letters and digits.
  private static let tokenSymbols = Set("!#$%&'*+-.^_`|~".utf8)

  /// Renders the URL and headers of `input`'s request, or the permanent error that refuses it.
  private func prepare(_ input: ActionInput, secrets: (any SecretStore)?) -> Result<Request, ActionError> {
    let renderedURL: String
    let valueRanges: [Range<Int>]
    let shownURL: String
    // The URL and the headers share one budget of CPU time.
    var machine = VirtualMachine()
    _ = machine.shareBudget()
    do {
      // A missing secret fails the request rather than send it to another address.
      let shown: String
      (renderedURL, valueRanges, shown) = try url.renderMarkingValues(
        input, secrets: secrets, field: "http url", using: &machine)
      // Whole up to 2 KB: the error record's failedResource is the URL (a signed or per-device
      // one passes 200 bytes); longer, a value made it so.
      shownURL = clipped(shown, keeping: 2_000)
    } catch {
      return .failure(error)
    }
    // A control character from a value (NUL, CR LF) went out percent-encoded, which the server
    // decodes back: refused, as a header value's is.
    let bytes = Array(renderedURL.utf8)
    let ranges = valueRanges.map { $0.clamped(to: 0..<bytes.count) }
    if let (_, scalar) = FileArchiveAction.firstControlCharacter(in: bytes, ranges: ranges) {
      let name = Unicode.Scalar(scalar).map(\.codePointName) ?? "U+\(scalar)"
      return .failure(
        ActionError(
          .permanent,
          "http url rendered '\(RuleFile.printable(shownURL, keepsLineBreaks: false))', in which a value holds a control character (\(name)); refused"
        ))
    }
    // The URL as it is sent (a value's `%` as `%25`) is the one judged.
    let sentURL = Self.encodingInvalidBytes(Self.escapingPercents(renderedURL, in: valueRanges))
    if let written = configuration.confirmationUrl, let prefix = confirmationPrefix {
      if !sentURL.startsExactly(with: prefix) {
        return .failure(
          ActionError(
            .permanent,
            "http url rendered '\(shownURL)', which does not start with confirmationUrl '\(written)'"))
      }
      // Both forms: the one sent, and the value's own escapes read as escapes (`%2e%2e` is refused
      // though it goes out as `%252e%252e`, for a server that decodes twice).
      if let problem = Self.destinationProblem(sentURL, confirmed: confirmed)
        ?? Self.destinationProblem(Self.encodingInvalidBytes(renderedURL), confirmed: confirmed)
      {
        return .failure(
          ActionError(.permanent, "http url rendered '\(shownURL)', which \(problem); refused"))
      }
    }
    if let problem = Self.portProblem(URLComponents(string: sentURL)) {
      return .failure(ActionError(.permanent, "http url rendered '\(shownURL)', which \(problem); refused"))
    }
    // A value may hold a '?' once the template's own text began the query, not start one: it would
    // cut the path short and add parameters (`/dev/${id}/in` with id = `x?admin=1`).
    if let mark = renderedURL.utf8.firstIndex(of: UInt8(ascii: "?")) {
      let offset = renderedURL.utf8.distance(from: renderedURL.utf8.startIndex, to: mark)
      if valueRanges.contains(where: { $0.contains(offset) }) {
        return .failure(
          ActionError(
            .permanent,
            "http url rendered '\(shownURL)', in which a value starts the query ('?'); refused"))
      }
    }
    var requestHeaders: [(String, String)] = []
    var contentTypeGiven = false
    for (index, header) in headers.enumerated() {
      let value: String
      do throws(ActionError) {
        value = try header.value.renderRequiringSecrets(
          input, secrets: secrets, field: "http header '\(header.key)'", using: &machine)
      } catch {
        return .failure(error)
      }
      // A field value is visible characters, spaces and tabs (RFC 9110): CR or LF would inject
      // headers, any other control character is refused by the client, every attempt alike.
      if Self.hasControlCharacter(value) {
        return .failure(
          ActionError(
            .permanent,
            "http header '\(header.key)' rendered a value with a control character (such as CR or LF); refused"
          ))
      }
      if index == contentTypeHeader {
        // One that renders empty (`${ct}` of a message without `ct`) says nothing: the default
        // goes instead of an empty media type.
        if value.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
        contentTypeGiven = true
      }
      requestHeaders.append((header.key, value))
    }
    // An empty result (a bare Undefined) is no JSON either: a batch would write it as nothing
    // between two commas.
    let isJSON = !input.evaluation.isBinary && !input.evaluation.payload.isEmpty
    if !contentTypeGiven {
      requestHeaders.append(("Content-Type", isJSON ? "application/json" : "application/octet-stream"))
    }
    // Services log it, and some refuse a request without one; a configured one replaces it.
    if !givesUserAgent {
      requestHeaders.append(("User-Agent", IoTRulesVersion.userAgent))
    }
    return .success(
      Request(
        topic: input.message.topic, url: sentURL,
        shownURL: shownURL,
        headers: requestHeaders,
        body: input.evaluation.payload, isJSON: isJSON))
  }

  /// Why the daemon would refuse the request `input` renders (for previews: `iotrules test`, the
  /// REPL's `.rule`), with every secret as `***`; nil when it would send it or when the reason lies
  /// in a secret's value, which a preview does not read.
  public func requestRefusal(_ input: ActionInput) -> String? {
    guard case .failure(let error) = prepare(input, secrets: PlaceholderSecrets()) else { return nil }
    // Refused for the placeholder's own text, not the rule's: not said.
    guard case .failure = prepare(input, secrets: PlaceholderSecrets.plain) else { return nil }
    return error.message
  }

  /// One POST of `body` to `request`'s URL with its headers, classified. Messages show the URL with
  /// its secrets masked. A request the client could not even write, its pooled connection closed
  /// by the server meanwhile (an HTTP/1.1 server that closes kept-alive connections after
  /// answering, without `Connection: close`), reached no one: it is sent again at once on a new
  /// connection, up to twice within `timeoutMs`, as part of the same attempt (a third of such
  /// requests went down the error path, and their topics' later results with them). A close
  /// after the request was written, before any answer, is most often the same race: sent again
  /// twice at most, then a failure for the retry policy, which says whether to send again.
  func send(_ request: Request, body: [UInt8]) async -> Result<Void, ActionError> {
    guard let client = client.withLock({ $0 }) else {
      return .failure(ActionError(.transient, "the http action for \(request.shownURL) is not started"))
    }
    var outgoing = HTTPClientRequest(url: request.url)
    outgoing.method = .POST
    for (key, value) in request.headers { outgoing.headers.add(name: key, value: value) }
    outgoing.body = .bytes(ByteBuffer(bytes: body))
    switch await connections.acquire() {
    case .granted:
      break
    case .ended(let reason):
      // Behind a webhook that stopped answering, the end of the intake does not wait a timeout per
      // 8 requests; the retry policy (none once the daemon is stopping) decides what comes next.
      var error = ActionError(
        .transient,
        "POST \(request.shownURL) not sent: the intake has ended (a replay's end, a stop, a reload) and a request of this action got no answer since (\(reason))"
      )
      error.unsent = true
      return .failure(error)
    }
    let deadline = NIODeadline.now() + .milliseconds(Int64(configuration.timeoutMs))
    var resends = 0
    var closedResends = 0
    var result: Result<Void, ActionError>
    while true {
      do {
        result = try await post(
          outgoing, on: client, shownURL: request.shownURL,
          holdsSecret: urlReadsSecret,
          until: deadline)
        break
      } catch let error as ChannelError
        where (error == .ioOnClosedChannel || error == .outputClosed) && resends < 2
        && NIODeadline.now() < deadline
      {
        resends += 1
      } catch
        where Self.closedWithoutAnswer(error) && closedResends < Self.closedResends
        && NIODeadline.now() < deadline
      {
        // Closed after the request was written, with no byte of an answer: most often a pooled
        // connection the server closed as it was reused (a server that closes after each answer
        // without `Connection: close` sent 811 of 1,000 results down the error path, none of them
        // refused; one that closed with the next request unread, a reset, about 200, and failed
        // the topic's backlog behind them as if the webhook were down). Sent again, twice at most,
        // each after a moment (one resend at once met another stale connection of the pool: 3 to 11 of 1,000 results over 50 topics lost, against 0 or
        // 1 now); a server that did take it gets it again, as at-least-once allows (a handler that
        // crashes after its work gets three copies an attempt, not more).
        closedResends += 1
        // A moment for the closes of the pool's other connections (their FINs on the way) to be
        // seen, so the resend does not take one of them.
        try? await Task.sleep(for: .milliseconds(10))
      } catch {
        let unanswered = failure(error, shownURL: request.shownURL)
        result = .failure(unanswered)
        // No answer (a timeout, a refused connection): behind a stop, the requests waiting give up.
        await connections.release(failing: unanswered.message)
        return result
      }
    }
    // A webhook that answers, even with a 503 or a 400, is still worth waiting for.
    await connections.release()
    return result
  }

  /// One POST before `deadline`, classified by the answer's status; a failure to get one is thrown.
  private func post(
    _ outgoing: HTTPClientRequest, on client: HTTPClient, shownURL url: String, holdsSecret: Bool,
    until deadline: NIODeadline
  ) async throws -> Result<Void, ActionError> {
    let response = try await client.execute(outgoing, deadline: deadline)
    // The status is the verdict; the body is read (to reuse the connection) within what is left
    // of `timeoutMs`, and given up after it: a server that sends its head and stalls must not
    // hold the action, and the daemon's stop, for ever.
    let body = await Self.drain(response.body, until: deadline)
    let status = Int(response.status.code)
    // What the server said of a refusal, its start, as AWS's records quote it (not when the
    // request carried a secret the server may echo).
    let said =
      holdsSecret || headersReadSecret ? "" : Self.excerpt(body).map { ": \($0)" } ?? ""
    switch status {
    case 200..<300:
      return .success(())
    case 408, 429, 500..<600:
      // A 429 asks the client to slow down even without saying for how long (0: the policy's own
      // backoff): the topic's later results wait with it.
      let retryAfter =
        response.headers.first(name: "Retry-After").flatMap(Self.retryAfterMs) ?? (status == 429 ? 0 : nil)
      var error = ActionError(
        .transient, "POST \(url) answered HTTP \(status)\(said)", retryAfterMs: retryAfter)
      error.answered = true
      return .failure(error)
    case 304:
      // Not Modified is no redirect (a POST should never get it).
      return .failure(
        ActionError(.permanent, "POST \(url) answered HTTP 304 (Not Modified), which is no success"))
    case 300..<400:
      // Redirects are not followed (neither does AWS): say where the server pointed.
      // Not quoted when the request carries a secret, in its URL (a server's redirect often
      // repeats the path) or a header (a server may echo the token into it), as a body is not.
      let location =
        holdsSecret || headersReadSecret
        ? " (its Location not shown: the request holds a secret)"
        : response.headers.first(name: "Location").map {
          " to \(clipped($0, keeping: 2_000).debugDescription)"
        } ?? ""
      return .failure(
        ActionError(
          .permanent, "POST \(url) answered HTTP \(status), a redirect\(location), which is not followed"))
    default:
      return .failure(ActionError(.permanent, "POST \(url) answered HTTP \(status)\(said)"))
    }
  }

  /// Whether `error` is a connection closed under a written request before any byte of an answer:
  /// by the server's close (`remoteConnectionClosed`), or reset (`ECONNRESET`: a server that closed
  /// a kept-alive connection with the next request unread).
  static func closedWithoutAnswer(_ error: any Error) -> Bool {
    if let error = error as? HTTPClientError { return error == .remoteConnectionClosed }
    if let error = error as? IOError { return error.errnoCode == ECONNRESET }
    return false
  }

  /// A POST that got no answer, said in words.
  private func failure(_ error: any Error, shownURL url: String) -> ActionError {
    switch error {
    case let error as IOError:
      // The system's words (`Connection refused`): NIO's own description of a failed connect is
      // garbled ("connection reset (error set): Connection refused) (errno: 111)").
      return ActionError(.transient, "POST \(url) failed: \(String(cString: strerror(error.errnoCode)))")
    case let error as NIOConnectionError:
      // A host name's connect, tried on each of its addresses: said by the first address's cause.
      if let dns = error.dnsAError ?? error.dnsAAAAError, error.connectionErrors.isEmpty {
        return ActionError(.transient, "POST \(url) failed: could not resolve host '\(error.host)' (\(dns))")
      }
      if let first = error.connectionErrors.first {
        return failure(first.error, shownURL: url)
      }
      return ActionError(.transient, "POST \(url) failed: could not connect to \(error.host):\(error.port)")
    case let error as ChannelError where error == .ioOnClosedChannel || error == .outputClosed:
      return ActionError(
        .transient, "POST \(url) failed: the connection was closed before the request was sent")
    case let error as HTTPClientError
    where error == .deadlineExceeded || error == .readTimeout || error == .getConnectionFromPoolTimeout:
      return ActionError(.transient, "POST \(url) timed out after \(configuration.timeoutMs) ms (timeoutMs)")
    case let error as HTTPClientError where error == .connectTimeout:
      // Logged as the client's raw `HTTPClientError.connectTimeout`.
      return ActionError(
        .transient,
        "POST \(url) failed: no connection within \(configuration.timeoutMs) ms (timeoutMs): the host did not "
          + "answer (down, or its packets dropped)")
    case let error as HTTPClientError where error == .remoteConnectionClosed:
      return ActionError(.transient, "POST \(url) failed: the server closed the connection without answering")
    case let error as HTTPClientError where error == .tlsHandshakeTimeout:
      return ActionError(
        .transient,
        "POST \(url) failed: the TLS handshake did not finish within \(configuration.timeoutMs) ms (is the port plain HTTP?)"
      )
    case let error as HTTPParserError where error == .invalidEOFState:
      // Said "not HTTP/1.1" before: the server's HTTP/1.1 head was cut off (a crashing proxy).
      return ActionError(
        .transient, "POST \(url) failed: the connection closed in the middle of the answer (its head cut off)"
      )
    case let error as HTTPParserError:
      return ActionError(.transient, "POST \(url) failed: the answer is not HTTP/1.1 (\(error))")
    default:
      let text = "\(error)"
      if text.contains("CERTIFICATE_VERIFY_FAILED") {
        // NIOSSL's words carry BoringSSL's file and line; an operator must act (retrying cannot help).
        return ActionError(
          .permanent,
          "POST \(url) failed: the server's TLS certificate did not verify (self-signed, expired, or from a CA "
            + "this machine does not trust: the http action trusts the system's CA certificates)")
      }
      if text.contains("failedToValidateHostname") {
        return ActionError(
          .permanent, "POST \(url) failed: the server's TLS certificate is not for the URL's host name")
      }
      if text.contains("WRONG_VERSION_NUMBER") {
        return ActionError(
          .permanent,
          "POST \(url) failed: the server did not answer in TLS (is the port plain HTTP? then the URL is http://)"
        )
      }
      if text.contains("CERTIFICATE_REQUIRED") {
        // The server asks for a client certificate, which the http action (as AWS's) never sends:
        // retrying cannot help.
        return ActionError(
          .permanent,
          "POST \(url) failed: the server requires a TLS client certificate, which the http action does not send "
            + "(give the endpoint a token in a header instead)")
      }
      // BoringSSL's other words carry the build's file and line: its reason is what helps.
      if let reason = text.range(of: "OPENSSL_internal:").map({
        text[$0.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
      }), !reason.isEmpty {
        return ActionError(.transient, "POST \(url) failed: TLS error \(reason)")
      }
      return ActionError(.transient, "POST \(url) failed: \(text)")
    }
  }

  /// `url` with its scheme (before `://`) in lower case: `HTTPS://h/` is `https://h/`.
  static func schemeLowercased(_ url: String) -> String {
    guard let end = url.range(of: "://") else { return url }
    return url[..<end.lowerBound].lowercased() + url[end.lowerBound...]
  }

  /// Reads `body` (up to 16 KiB) until it ends or `deadline` passes, whichever comes first: what
  /// came by then (a 503 whose body trickled in lost its start at the deadline).
  static func drain(_ body: HTTPClientResponse.Body, until deadline: NIODeadline) async -> [UInt8] {
    final class Kept: Sendable { let bytes = Mutex<[UInt8]>([]) }
    let kept = Kept()
    await withTaskGroup(of: Void.self) { group in
      group.addTask {
        // Its first 16 KiB (an error's quote needs its start); a longer one is not read to its end,
        // and its connection is not reused. A body cut short keeps what came.
        do {
          for try await chunk in body {
            let full = kept.bytes.withLock { kept in
              kept.append(contentsOf: chunk.readableBytesView.prefix(16_384 - kept.count))
              return kept.count >= 16_384
            }
            if full { break }
          }
        } catch {}
      }
      group.addTask {
        let left = deadline - NIODeadline.now()
        if left.nanoseconds > 0 { try? await Task.sleep(nanoseconds: UInt64(left.nanoseconds)) }
      }
      await group.next()
      group.cancelAll()
    }
    return kept.bytes.withLock { $0 }
  }

  /// The first 200 bytes of an answer's body as one quoted line, escaped once as a JSON string
  /// is (`\"`, `\\`, control characters as `\u001B`; bytes that are not UTF-8 as U+FFFD), or nil
  /// for none. (Control characters were escaped twice, `\\u0009`, and a body with a byte that is
  /// not UTF-8 was not quoted at all.)
  static func excerpt(_ body: [UInt8]?) -> String? {
    guard let body, !body.isEmpty else { return nil }
    var end = min(body.count, 200)
    // Cut before a character, not inside one.
    while end < body.count, end > 0, body[end] & 0xC0 == 0x80 { end -= 1 }
    let trimmed = String(decoding: body[..<end], as: UTF8.self).trimmingCharacters(
      in: .whitespacesAndNewlines)
    guard !trimmed.isEmpty else { return nil }
    var quoted = String.UnicodeScalarView()
    for scalar in trimmed.unicodeScalars {
      if scalar == "\"" || scalar == "\\" { quoted.append("\\") }
      quoted.append(scalar)
    }
    return "\"" + RuleFile.printable(String(quoted), keepsLineBreaks: false) + "\""
      + (end < body.count ? " …" : "")
  }

  /// `Retry-After` as milliseconds: delay-seconds or an HTTP date (a huge one is the longest wait
  /// an Int holds; the retry policy caps it).
  static func retryAfterMs(_ text: String) -> Int? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if let seconds = Int(trimmed), seconds >= 0 {
      let (milliseconds, overflow) = seconds.multipliedReportingOverflow(by: 1000)
      return overflow ? Int.max : milliseconds
    }
    // Delay-seconds past what an Int holds (`99999999999999999999`): the longest wait, not none.
    if !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 &- 0x30 < 10 }) { return Int.max }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "GMT")
    formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
    guard let date = formatter.date(from: trimmed) else { return nil }
    return Int(max(0, min(date.timeIntervalSinceNow * 1000, Double(Int.max / 2))))
  }

  /// Sends the open batches now, and later results' batches without waiting `maxDelayMs`.
  public func hurry() async {
    hurried.store(true, ordering: .relaxed)
    await connections.hurry()
    await batcher?.hurry()
  }

  /// Sends what is batched, then closes the connection pool.
  public func shutdown() async {
    await batcher?.flushAll()
    let current = client.withLock { state -> HTTPClient? in
      defer { state = nil }
      return state
    }
    try? await current?.shutdown()
  }
}

/// At most a given number of holders at once; the others wait their turn, first come first served.
/// Once the owner hurries (the intake ended, the rule was replaced) they still wait, unless a
/// holder's request gets no answer: then the ones waiting give up at once (a webhook that stopped
/// answering costs the end one timeout, not one per 8 waiting requests).
actor Permits {
  /// How a wait for a permit ended.
  enum Outcome: Equatable {
    /// The caller holds a permit.
    case granted
    /// The owner hurried and a holder's request got no answer while the caller waited: why.
    case ended(String)
  }

  private var free: Int
  private var waiting: [CheckedContinuation<Outcome, Never>] = []
  private var hurried = false

  /// `count` permits.
  init(_ count: Int) { free = count }

  /// Takes a permit, waiting for one to come free.
  func acquire() async -> Outcome {
    if free > 0 {
      free -= 1
      return .granted
    }
    return await withCheckedContinuation { waiting.append($0) }
  }

  /// Gives a permit back, to the longest waiting caller if any. `failing`: the holder's request
  /// got no answer (a timeout, a refused connection), why; after `hurry` that ends the waits under
  /// way (not later ones: a retry at a replay's end waits its turn again).
  func release(failing: String? = nil) {
    if hurried, let failing {
      let all = waiting
      waiting = []
      for waiter in all { waiter.resume(returning: .ended(failing)) }
    }
    if waiting.isEmpty {
      free += 1
    } else {
      waiting.removeFirst().resume(returning: .granted)
    }
  }

  /// The intake ended or the rule was replaced: from now on a request with no answer ends the
  /// waits under way.
  func hurry() {
    hurried = true
  }
}

/// Collects results per URL and headers into AWS-style batches (a JSON array body): results whose
/// headers differ (`X-Device: ${deviceId}`, a tenant's credential) never share a request.
actor HTTPBatcher {
  /// Sends one batch: the request of its results (URL and headers) and the body.
  typealias Sender = @Sendable (HTTPAction.Request, [UInt8]) async -> Result<Void, ActionError>

  private struct OpenBatch {
    var id: Int
    var items: [[UInt8]] = []
    var bytes = 1
    /// The first result's request: its URL and headers are every result's.
    var request: HTTPAction.Request
    var outcomes: [BatchOutcome] = []
    var sender: Sender
  }

  /// What results must share to go out in one request: the URL, the headers and, unless
  /// `acrossTopics`, the topic.
  /// Compared byte for byte: a URL, header value or topic spelled with `é` and one with `e` +
  /// U+0301 are two keys (as Swift strings they were one, and shared a request).
  func key(_ request: HTTPAction.Request) -> ExactText {
    var key = request.url
    for (name, value) in request.headers { key += "\n\(name)\u{0}\(value)" }
    if !limits.acrossTopics { key += "\n\u{1}\(request.topic)" }
    return ExactText(key)
  }

  private let limits: HTTPAction.Batch
  private var open: [ExactText: OpenBatch] = [:]
  private var nextID = 0
  /// The last batch sent to each URL, by its batch id: the next one goes after it is answered, so
  /// batches arrive in the order their results came (two sent at once could overtake each other).
  /// Removed once answered unless a later one took its place (one a URL kept 20 KB for good: 40,000
  /// device URLs took 675 MB).
  private var sending: [ExactText: (id: Int, topic: String, task: Task<Result<Void, ActionError>, Never>)] =
    [:]

  /// The number of URLs with a batch on its way.
  var urlsSending: Int { sending.count }

  /// Set by `hurry`: each enqueue's batches go out at its end.
  private var hurried = false

  init(limits: HTTPAction.Batch) { self.limits = limits }

  /// Adds `requests` to the open batches in their order (one topic's results together) and returns,
  /// for each, the outcome of the batch it goes out in. With `flush`, the batches they went into are
  /// sent at once (something that must follow them is waiting).
  func enqueue(_ requests: [HTTPAction.Request], flush: Bool = false, sender: @escaping Sender)
    -> [BatchOutcome]
  {
    let outcomes = requests.map { request in
      let outcome = BatchOutcome()
      let url = key(request)
      // A body is `[` + items joined by `,` + `]`.
      if let batch = open[url], batch.bytes + request.body.count + 1 > limits.maxBytes {
        self.flush(url)
      }
      if open[url] == nil {
        nextID += 1
        open[url] = OpenBatch(id: nextID, request: request, sender: sender)
        let id = nextID
        let delay = limits.maxDelayMs
        // Hurried, the batch goes out at the end of this enqueue: no timer.
        if !hurried {
          Task {
            try? await Task.sleep(for: .milliseconds(delay))
            self.flush(url, ifID: id)
          }
        }
      }
      open[url]!.items.append(request.body)
      open[url]!.bytes += request.body.count + 1
      open[url]!.outcomes.append(outcome)
      if open[url]!.items.count >= limits.maxSize || open[url]!.bytes >= limits.maxBytes {
        self.flush(url)
      }
      return outcome
    }
    if flush || hurried {
      for key in Set(requests.map(key)) { self.flush(key) }
    }
    return outcomes
  }

  @discardableResult
  private func flush(_ url: ExactText, ifID id: Int? = nil) -> Task<Result<Void, ActionError>, Never>? {
    guard let batch = open[url], id == nil || batch.id == id else { return nil }
    open[url] = nil
    var body: [UInt8] = [UInt8(ascii: "[")]
    for (index, item) in batch.items.enumerated() {
      if index > 0 { body.append(UInt8(ascii: ",")) }
      body.append(contentsOf: item)
    }
    body.append(UInt8(ascii: "]"))
    let request = batch.request
    let outcomes = batch.outcomes
    let sender = batch.sender
    // In order per URL, whatever the headers: batches arrive as their results came.
    let previous = sending[ExactText(request.url)]
    let id = batch.id
    let send = Task {
      let before = await previous?.task.value
      let result: Result<Void, ActionError>
      if let unsent = self.givenUp(
        after: before, url: request.shownURL, sameTopic: previous?.topic == request.topic)
      {
        result = .failure(unsent)
      } else {
        result = await sender(request, body)
      }
      for outcome in outcomes { outcome.complete(result) }
      self.answered(ExactText(request.url), id: id)
      return result
    }
    sending[ExactText(request.url)] = (id, request.topic, send)
    return send
  }

  /// A batch whose predecessor to its URL, of its topic, was asked to wait is not sent: it fails
  /// unsent with the wait. Once hurried, so is one whose predecessor got no answer (a timeout, a refused
  /// connection), at once, as a single request waiting for a connection does (batches to one URL
  /// go one after another, so 40 topics behind a hung webhook held a stop for 40 timeouts). Nil
  /// when it is to be sent.
  private func givenUp(after before: Result<Void, ActionError>?, url: String, sameTopic: Bool) -> ActionError?
  {
    guard case .failure(let failed)? = before, failed.kind == .transient else { return nil }
    // Asked to wait (a 429, a `Retry-After`): its topic's batches queued behind it to its URL are
    // not sent during the wait but fail with it unsent, to be retried after it, in order (a topic's
    // 23 later batches went out during a 1 s `Retry-After`, ahead of the refused one); its lane
    // holds the topic's later results meanwhile, as it does unbatched, at a replay's end too.
    // Other topics go on, as unbatched (chained behind another topic's refusals, a retry could
    // fail unsent without end).
    if failed.retryAfterMs != nil, sameTopic {
      if failed.unsent { return failed }
      var error = ActionError(
        .transient,
        "POST \(url) not sent: the batch before it to this URL was asked to wait (\(failed.message))",
        retryAfterMs: failed.retryAfterMs)
      error.unsent = true
      error.answered = true
      return error
    }
    guard hurried, !failed.answered else { return nil }
    if failed.unsent { return failed }
    var error = ActionError(
      .transient,
      "POST \(url) not sent: the intake has ended (a replay's end, a stop, a reload) and the batch before it to this URL got no answer (\(failed.message))"
    )
    error.unsent = true
    return error
  }

  /// Forgets the batch `id` sent to `url` if no later one followed it.
  private func answered(_ url: ExactText, id: Int) {
    if sending[url]?.id == id { sending[url] = nil }
  }

  /// Sends every open batch now, and from now on each enqueue's batches at its end: the run is
  /// ending (or the rule was replaced), so no more results are worth waiting `maxDelayMs` for.
  func hurry() {
    hurried = true
    for key in Array(open.keys) { flush(key) }
  }

  /// Sends every open batch now and waits for the answers.
  func flushAll() async {
    let sends = open.keys.compactMap { flush($0) }
    for send in sends { _ = await send.value }
  }
}

/// The outcome of one batched result: completed once, when its batch's POST answers.
final class BatchOutcome: Sendable {
  private let state = Mutex<
    (result: Result<Void, ActionError>?, waiters: [CheckedContinuation<Result<Void, ActionError>, Never>])
  >((nil, []))

  /// Completes the outcome and wakes those waiting.
  func complete(_ result: Result<Void, ActionError>) {
    let waiters = state.withLock { state in
      state.result = result
      defer { state.waiters = [] }
      return state.waiters
    }
    for waiter in waiters { waiter.resume(returning: result) }
  }

  /// The outcome, once the batch has been answered.
  func wait() async -> Result<Void, ActionError> {
    await withCheckedContinuation { continuation in
      let ready = state.withLock { state -> Result<Void, ActionError>? in
        if let result = state.result { return result }
        state.waiters.append(continuation)
        return nil
      }
      if let ready { continuation.resume(returning: ready) }
    }
  }
}
