import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An HTTP server inside the test process on 127.0.0.1, which records every request and answers from
/// a script: success, failure, 429 with Retry-After, or a stall. Stop it with `stop()`.
public final class LoopbackHTTPServer: Sendable {
  /// One request as received.
  public struct Request: Sendable {
    /// `POST`, `GET`...
    public var method: String
    /// The path and query.
    public var uri: String
    /// The headers, in order.
    public var headers: [(name: String, value: String)]
    /// The body bytes.
    public var body: [UInt8]

    /// The first header named `name` (any case).
    public func header(_ name: String) -> String? {
      headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
  }

  /// One scripted answer.
  public struct Reply: Sendable {
    /// The status code.
    public var status: Int
    /// Extra headers.
    public var headers: [(String, String)]
    /// Wait this long before answering (a stall).
    public var delayMs: Int
    /// When above 0, the head announces a body of this many bytes more than `body`, which never
    /// come.
    public var withheldBodyBytes: Int
    /// When set, the connection is closed instead of answered.
    public var closesConnection = false
    /// When set, the connection is closed right after the answer, which does not say so (no
    /// `Connection: close`), as some HTTP/1.1 servers do.
    public var closesAfterAnswer = false
    /// When set, the connection takes no further request after the answer (one sent on it is
    /// neither recorded nor answered) and is reset (RST) this many milliseconds later: a server
    /// that closes a kept-alive connection with the next request unread.
    public var resetsAfterAnswerMs: Int?
    /// The body of the answer.
    public var body: [UInt8] = []

    /// Creates a reply.
    public init(status: Int, headers: [(String, String)] = [], delayMs: Int = 0, withheldBodyBytes: Int = 0) {
      self.status = status
      self.headers = headers
      self.delayMs = delayMs
      self.withheldBodyBytes = withheldBodyBytes
    }

    /// 200.
    public static let ok = Reply(status: 200)
    /// 429 with `Retry-After: seconds`.
    public static func tooManyRequests(retryAfterSeconds: Int) -> Reply {
      Reply(status: 429, headers: [("Retry-After", String(retryAfterSeconds))])
    }
    /// 500.
    public static let serverError = Reply(status: 500)
    /// No answer: the connection closed.
    public static let closed: Reply = {
      var reply = Reply(status: 200)
      reply.closesConnection = true
      return reply
    }()
    /// 200, then the connection closed (the answer does not say it will be).
    public static let okThenClosed: Reply = {
      var reply = Reply(status: 200)
      reply.closesAfterAnswer = true
      return reply
    }()
    /// 200, then the connection reset `milliseconds` later, later requests on it unread.
    public static func okThenReset(afterMilliseconds milliseconds: Int) -> Reply {
      var reply = Reply(status: 200)
      reply.resetsAfterAnswerMs = milliseconds
      return reply
    }
    /// 200 after `milliseconds`.
    public static func stall(milliseconds: Int) -> Reply { Reply(status: 200, delayMs: milliseconds) }
  }

  private struct State {
    var script: [Reply] = []
    var routes: [(path: String, reply: Reply)] = []
    var fallback = Reply.ok
    var requests: [Request] = []
  }

  private let state = Mutex(State())
  private let channel: any Channel
  /// The port on 127.0.0.1.
  public let port: Int

  /// Starts listening on a free loopback port.
  public init() throws {
    let box = StateBox()
    let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
          try channel.pipeline.syncOperations.addHandler(Handler(server: box))
        }
      }
    channel = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
    port = channel.localAddress?.port ?? 0
    box.server.withLock { $0 = self }
  }

  /// `http://127.0.0.1:PORT` + `path`.
  public func url(_ path: String = "/") -> String { "http://127.0.0.1:\(port)\(path)" }

  /// Answers the next requests with `replies`, in order; then with the fallback.
  public func enqueue(_ replies: [Reply]) { state.withLock { $0.script += replies } }

  /// Answers every request whose path (with its query) starts with `prefix` with `reply`, before
  /// the script and the fallback: a webhook that always refuses one result.
  public func route(_ prefix: String, _ reply: Reply) { state.withLock { $0.routes.append((prefix, reply)) } }

  /// The answer once the script is used up (200 by default).
  public func setFallback(_ reply: Reply) { state.withLock { $0.fallback = reply } }

  /// The requests received so far.
  public var requests: [Request] { state.withLock { $0.requests } }

  /// Closes the listening socket.
  public func stop() { try? channel.close().wait() }

  fileprivate func receive(_ request: Request) -> Reply {
    state.withLock { state in
      state.requests.append(request)
      if let route = state.routes.first(where: { request.uri.hasPrefix($0.path) }) { return route.reply }
      return state.script.isEmpty ? state.fallback : state.script.removeFirst()
    }
  }

  private final class StateBox: Sendable {
    let server = Mutex<LoopbackHTTPServer?>(nil)
  }

  private final class Handler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: StateBox
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// Set once an answer said the connection takes no more requests (`resetsAfterAnswerMs`).
    private var takesNoMore = false

    init(server: StateBox) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      switch unwrapInboundIn(data) {
      case .head(let head):
        self.head = head
        body = []
      case .body(var buffer):
        body += buffer.readBytes(length: buffer.readableBytes) ?? []
      case .end:
        guard let head, !takesNoMore, let server = server.server.withLock({ $0 }) else { return }
        let request = Request(
          method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) },
          body: body)
        let reply = server.receive(request)
        let keepAlive = head.isKeepAlive
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let respond: @Sendable () -> Void = {
          let (handler, context) = loopBound.value
          if reply.closesConnection {
            context.close(promise: nil)
            return
          }
          var headers = HTTPHeaders(reply.headers)
          headers.add(name: "Content-Length", value: String(reply.withheldBodyBytes + reply.body.count))
          if !keepAlive { headers.add(name: "Connection", value: "close") }
          let responseHead = HTTPResponseHead(
            version: head.version, status: HTTPResponseStatus(statusCode: reply.status), headers: headers)
          if reply.withheldBodyBytes > 0 {
            // The head and `body` alone: the rest of the body it announces never comes.
            context.write(handler.wrapOutboundOut(.head(responseHead)), promise: nil)
            context.writeAndFlush(
              handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: reply.body)))), promise: nil)
            return
          }
          context.write(handler.wrapOutboundOut(.head(responseHead)), promise: nil)
          if !reply.body.isEmpty {
            context.write(
              handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: reply.body)))), promise: nil)
          }
          if reply.closesAfterAnswer {
            context.writeAndFlush(handler.wrapOutboundOut(.end(nil))).whenComplete { _ in
              loopBound.value.1.close(promise: nil)
            }
            return
          }
          if let resetMs = reply.resetsAfterAnswerMs {
            handler.takesNoMore = true
            context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
            context.eventLoop.scheduleTask(in: .milliseconds(Int64(resetMs))) {
              let channel = loopBound.value.1.channel
              // A zero linger makes the close a reset.
              guard let options = channel as? SocketOptionProvider else { return channel.close(promise: nil) }
              options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in
                channel.close(promise: nil)
              }
            }
            return
          }
          context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
        }
        if reply.delayMs > 0 {
          context.eventLoop.scheduleTask(in: .milliseconds(Int64(reply.delayMs))) { respond() }
        } else {
          respond()
        }
      }
    }
  }
}
