// jemalloc reads its options from this variable when the process starts (before MALLOC_CONF, which
// still overrides it). One arena instead of four per CPU: a daemon with 10,000 rules loaded kept
// ~3.5 MB more resident across the idle arenas, and throughput did not change (Benchmarks/daemon_bench.py).
#include "CJemallocConfig.h"

#include <stddef.h>

// Weak: the symbol is jemalloc's when it is linked, and absent (NULL) otherwise.
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

const char *malloc_conf = "narenas:1";

void iotrules_release_free_memory(void) {
  // MALLCTL_ARENAS_ALL: every arena returns its unused dirty pages now rather than after the decay.
  if (mallctl != NULL) (void)mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
}
