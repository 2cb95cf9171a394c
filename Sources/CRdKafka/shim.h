#ifndef IOTRULES_CRDKAFKA_SHIM_H
#define IOTRULES_CRDKAFKA_SHIM_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/// RD_KAFKA_PARTITION_UA is a cast macro Swift does not import.
static inline int32_t iotrules_kafka_partition_unassigned(void) { return RD_KAFKA_PARTITION_UA; }

/// rd_kafka_producev is variadic: this fixed-arity wrapper copies key and value and takes ownership of
/// `headers` on success only (the caller destroys them on failure).
static inline rd_kafka_resp_err_t iotrules_kafka_produce(
    rd_kafka_t *rk, const char *topic, int32_t partition, const void *key, size_t key_len,
    const void *value, size_t value_len, rd_kafka_headers_t *headers, void *opaque) {
  return rd_kafka_producev(
      rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
      RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_HEADERS(headers),
      RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}
#endif
