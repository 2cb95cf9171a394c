#ifndef CJEMALLOCCONFIG_H
#define CJEMALLOCCONFIG_H

/// Returns the pages the allocator holds free to the system (jemalloc's purge of every arena; does
/// nothing when jemalloc is not the allocator).
void iotrules_release_free_memory(void);

#endif
