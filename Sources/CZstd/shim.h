// Thin module over Debian's libzstd-dev 1.5.4. ZSTD_customMem and
// ZSTD_createCCtx_advanced sit behind ZSTD_STATIC_LINKING_ONLY (stable since
// 1.4, exported by the shared library). No logic.
#ifndef EDGE_CZSTD_SHIM_H
#define EDGE_CZSTD_SHIM_H
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#endif
