import CRdKafka
import Foundation

/// librdkafka's mock cluster hosted in the test process: a real Kafka-protocol peer on 127.0.0.1.
/// Destroy it with `stop()`; it is also destroyed when released.
public final class KafkaMockCluster: @unchecked Sendable {
  private var handle: OpaquePointer?
  private var cluster: OpaquePointer?
  /// The bootstrap servers, `127.0.0.1:PORT,…`.
  public let bootstrapServers: String

  /// Starts a cluster of `brokers` brokers.
  public init(brokers: Int32 = 1) throws {
    let conf = rd_kafka_conf_new()!
    var errorText = [CChar](repeating: 0, count: 512)
    rd_kafka_conf_set(conf, "log_level", "3", &errorText, errorText.count)
    guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errorText, errorText.count) else {
      throw TestPeerError("cannot create the client that hosts the Kafka mock cluster")
    }
    guard let cluster = rd_kafka_mock_cluster_new(handle, brokers) else {
      rd_kafka_destroy(handle)
      throw TestPeerError("rd_kafka_mock_cluster_new failed")
    }
    self.handle = handle
    self.cluster = cluster
    bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
  }

  deinit { stop() }

  /// Creates `topic` with `partitions` partitions.
  public func createTopic(_ topic: String, partitions: Int32) throws {
    guard let cluster else { throw TestPeerError("the mock cluster is stopped") }
    let error = rd_kafka_mock_topic_create(cluster, topic, partitions, 1)
    guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
      throw TestPeerError("creating the mock topic \(topic): \(String(cString: rd_kafka_err2str(error)))")
    }
  }

  /// Makes the cluster answer metadata requests for `topic` with "topic authorization failed"
  /// (`refused`), or normally again.
  public func refuseTopic(_ topic: String, _ refused: Bool) {
    guard let cluster else { return }
    rd_kafka_mock_topic_set_error(
      cluster, topic, refused ? RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED : RD_KAFKA_RESP_ERR_NO_ERROR)
  }

  /// Takes broker `id` (1 to the broker count) down: its connections are closed and new ones
  /// refused (`up` false), or brings it back.
  public func setBroker(_ id: Int32, up: Bool) {
    guard let cluster else { return }
    if up {
      rd_kafka_mock_broker_set_up(cluster, id)
    } else {
      rd_kafka_mock_broker_set_down(cluster, id)
    }
  }

  /// Makes the next `codes.count` requests of the protocol's `apiKey` (0 Produce, 22 InitProducerId)
  /// fail with Kafka's error `codes` (31 cluster authorization failed, 87 invalid record), in order.
  public func failRequests(apiKey: Int16, codes: [Int32]) {
    guard let cluster else { return }
    let errors = codes.map { rd_kafka_resp_err_t(rawValue: $0) }
    rd_kafka_mock_push_request_errors_array(cluster, apiKey, errors.count, errors)
  }

  /// Destroys the cluster and its host client.
  public func stop() {
    if let cluster { rd_kafka_mock_cluster_destroy(cluster) }
    if let handle { rd_kafka_destroy(handle) }
    cluster = nil
    handle = nil
  }
}
