#ifndef EDGE_CHIREDIS_SHIM_H
#define EDGE_CHIREDIS_SHIM_H
#include <sys/time.h>
#include <hiredis/hiredis.h>

/* Reply type macros as plain ints (Swift does not import them). */
static inline int edge_redis_reply_integer(void) { return REDIS_REPLY_INTEGER; }
static inline int edge_redis_reply_array(void) { return REDIS_REPLY_ARRAY; }
static inline int edge_redis_reply_error(void) { return REDIS_REPLY_ERROR; }
#endif
