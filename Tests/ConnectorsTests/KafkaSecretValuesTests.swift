import CRdKafka
import Testing

@testable import Connectors

/// The secret values of librdkafka settings stay out of librdkafka's messages.
struct KafkaSecretValuesTests {
  /// librdkafka quotes a bad `sasl.oauthbearer.config` from the token it could not read on: the
  /// rest of the value from each token on is masked, not only the whole value, and not its words
  /// alone (`principal` stays); a value shorter than 4 bytes is left alone.
  @Test func aSecretSettingIsMaskedWholeAndByPiece() {
    KafkaSecretValues.note(
      "principal=svc extension_traceId=abc OAUTHTESTSECRET_7", of: "sasl.oauthbearer.config")
    let text = KafkaSecretValues.masked(
      "Failed to acquire SASL OAUTHBEARER token: Unrecognized sasl.oauthbearer.config beginning at: OAUTHTESTSECRET_7 (Local: Authentication failure)"
    )
    #expect(!text.contains("OAUTHTESTSECRET_7") && text.contains("beginning at: *** (Local"), "\(text)")
    #expect(KafkaSecretValues.masked("a principal=svc b") == "a principal=svc b")
    KafkaSecretValues.note("pw9", of: "sasl.password")
    #expect(KafkaSecretValues.masked("a pw9 b") == "a pw9 b")
  }

  /// Settings librdkafka keeps secret are noted when a configuration is made, whatever their source.
  @Test func aSensitiveKeysValueIsNotedWhenTheConfigurationIsMade() throws {
    let conf = try KafkaConfigBuilder.make([("sasl.password", "KEYSECRET-41")])
    rd_kafka_conf_destroy(conf)
    #expect(KafkaSecretValues.masked("broker said KEYSECRET-41") == "broker said ***")
  }
}
