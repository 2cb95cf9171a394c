// jemalloc reads its options from this variable when the process starts (before MALLOC_CONF, which
// still overrides it). One arena instead of four per CPU: a daemon with 10,000 rules loaded kept
// ~3.5 MB more resident across the idle arenas, and throughput did not change (Benchmarks/daemon_bench.py).
#include "CJemallocConfig.h"

const char *malloc_conf = "narenas:1";

const char *iotrules_malloc_conf(void) { return malloc_conf; }
