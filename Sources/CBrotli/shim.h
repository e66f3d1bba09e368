// Thin module over Debian's libbrotli-dev 1.0.9 (encoder only). No logic.
#ifndef EDGE_CBROTLI_SHIM_H
#define EDGE_CBROTLI_SHIM_H
#include <brotli/encode.h>
#endif
