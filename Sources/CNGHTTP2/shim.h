// Thin module over Debian's libnghttp2-dev 1.52 (mem_recv/mem_send,
// nghttp2_data_provider; not the *2 APIs of 1.60+). Wrappers only, no logic.
#ifndef EDGE_CNGHTTP2_SHIM_H
#define EDGE_CNGHTTP2_SHIM_H
#include <nghttp2/nghttp2.h>
#include <malloc.h>

/// malloc_usable_size for the per-worker accounting allocator handed to nghttp2.
static inline size_t edge_usable_size(void *p) { return p ? malloc_usable_size(p) : 0; }
#endif
