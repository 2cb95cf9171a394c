#ifndef CJEMALLOCCONFIG_H
#define CJEMALLOCCONFIG_H

/// The options the iotrules executable gives jemalloc (see malloc_conf.c).
const char *iotrules_malloc_conf(void);

#endif
