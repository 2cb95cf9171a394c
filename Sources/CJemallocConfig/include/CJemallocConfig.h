#ifndef CJEMALLOCCONFIG_H
#define CJEMALLOCCONFIG_H

/// Returns the pages the allocator holds free to the system (jemalloc's purge of every arena; does
/// nothing when jemalloc is not the allocator).
void iotrules_release_free_memory(void);

/// The number of allocations made so far by the whole process (jemalloc's small and large
/// requests, refreshed now); -1 when jemalloc is not the allocator or keeps no statistics. The
/// benchmarks divide a difference of two readings by the messages between them.
long long iotrules_allocation_count(void);

#endif
