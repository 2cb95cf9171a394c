import CRdKafka
import Foundation
import Logging
import RulesEngine
import Synchronization

/// A Kafka producer whose `produce` returns only after the broker's delivery report.
///
/// Delivery reports run inside `rd_kafka_poll` on the producer's own thread; each report resumes the
/// continuation of its message, passed through librdkafka's per-message opaque pointer.
public final class KafkaProducer: @unchecked Sendable {
  private final class Pending {
    let continuation: CheckedContinuation<Result<Void, ActionError>, Never>
    let topic: String
    init(_ continuation: CheckedContinuation<Result<Void, ActionError>, Never>, topic: String) {
      self.continuation = continuation
      self.topic = topic
    }
  }

  /// `host:port` pairs.
  public let bootstrapServers: String
  private let logger: Logger
  private let handle: OpaquePointer
  private let stopRequested = Atomic<Bool>(false)
  private let closed = Mutex(false)
  private let pollThreadDone = DispatchSemaphore(value: 0)

  /// Creates a producer for `bootstrapServers` with extra librdkafka `config` (acks=all by default).
  public init(
    bootstrapServers: String, config: [(key: String, value: String)] = [],
    logger: Logger = Logger(label: "iotrules.kafka.producer")
  ) throws(ConnectorError) {
    self.bootstrapServers = bootstrapServers
    self.logger = logger
    let conf = try KafkaConfigBuilder.make(
      [("bootstrap.servers", bootstrapServers), ("acks", "all"), ("linger.ms", "5")] + config)
    rd_kafka_conf_set_dr_msg_cb(conf) { _, message, _ in
      guard let message, let opaque = message.pointee._private else { return }
      let pending = Unmanaged<Pending>.fromOpaque(opaque).takeRetainedValue()
      let error = message.pointee.err
      if error == RD_KAFKA_RESP_ERR_NO_ERROR {
        pending.continuation.resume(returning: .success(()))
      } else {
        let permanent =
          error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || error == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION
          || error == RD_KAFKA_RESP_ERR_INVALID_MSG
          || error == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
        pending.continuation.resume(
          returning: .failure(
            ActionError(
              permanent ? .permanent : .transient,
              "Kafka delivery to '\(pending.topic)' failed: \(KafkaConfigBuilder.errorText(error))")))
      }
    }
    handle = try KafkaConfigBuilder.client(RD_KAFKA_PRODUCER, conf)
    Thread.detachNewThread { [self] in
      while !stopRequested.load(ordering: .acquiring) { rd_kafka_poll(handle, 100) }
      pollThreadDone.signal()
    }
  }

  /// Produces one record and returns after its delivery report. A nil `partition` lets librdkafka
  /// choose (by key hash). A full local queue or a failed delivery is transient; an unknown partition
  /// or an oversized message is permanent.
  public func produce(
    topic: String, key: [UInt8]?, value: [UInt8], partition: Int32? = nil,
    headers: [(key: String, value: String)] = []
  ) async throws(ActionError) {
    if closed.withLock({ $0 }) {
      throw ActionError(.transient, "the Kafka producer for \(bootstrapServers) is closed")
    }
    let result: Result<Void, ActionError> = await withCheckedContinuation { continuation in
      let pending = Unmanaged.passRetained(Pending(continuation, topic: topic))
      var headerList: OpaquePointer? = nil
      if !headers.isEmpty {
        headerList = rd_kafka_headers_new(headers.count)
        for header in headers {
          let bytes = Array(header.value.utf8)
          rd_kafka_header_add(headerList, header.key, -1, bytes, bytes.count)
        }
      }
      let error = value.withUnsafeBytes { valueBuffer in
        let keyLength = key?.count ?? 0
        return (key ?? []).withUnsafeBytes { keyBuffer in
          iotrules_kafka_produce(
            handle, topic, partition ?? iotrules_kafka_partition_unassigned(),
            key == nil ? nil : keyBuffer.baseAddress, keyLength, valueBuffer.baseAddress, valueBuffer.count,
            headerList, pending.toOpaque())
        }
      }
      if error != RD_KAFKA_RESP_ERR_NO_ERROR {
        if let headerList { rd_kafka_headers_destroy(headerList) }
        pending.release()
        let permanent =
          error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || error == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION
        continuation.resume(
          returning: .failure(
            ActionError(
              permanent ? .permanent : .transient,
              "producing to '\(topic)' on \(bootstrapServers) failed: \(KafkaConfigBuilder.errorText(error))")
          ))
      }
    }
    try result.get()
  }

  /// Waits up to `timeoutMs` for outstanding deliveries, then stops the poll thread and frees the client.
  public func close(timeoutMs: Int32 = 10_000) {
    let first = closed.withLock { closed -> Bool in
      defer { closed = true }
      return !closed
    }
    guard first else { return }
    let remaining = rd_kafka_flush(handle, timeoutMs)
    if remaining != RD_KAFKA_RESP_ERR_NO_ERROR {
      logger.warning(
        "Kafka producer closed with undelivered messages: \(KafkaConfigBuilder.errorText(remaining))")
    }
    stopRequested.store(true, ordering: .releasing)
    pollThreadDone.wait()
    // Destroying purges what is left and reports each as failed, resuming its waiter.
    rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
    rd_kafka_poll(handle, 0)
    rd_kafka_destroy(handle)
  }
}
