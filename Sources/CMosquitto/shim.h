#ifndef IOTRULES_CMOSQUITTO_SHIM_H
#define IOTRULES_CMOSQUITTO_SHIM_H
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <sys/eventfd.h>
#endif
