// Thin module over Debian's zlib1g-dev 1.2.13. deflateInit2 is a macro
// (it passes ZLIB_VERSION and sizeof(z_stream)): wrapped here. No logic.
#ifndef EDGE_CZLIB_SHIM_H
#define EDGE_CZLIB_SHIM_H
#include <zlib.h>

/// deflateInit2 with the gzip wrapper (windowBits 15 + 16), memLevel 8.
static inline int edge_deflate_init_gzip(z_streamp strm, int level) {
    return deflateInit2(strm, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
#endif
