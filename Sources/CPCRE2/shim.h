// PCRE2 with 8-bit code units. pcre2.h needs PCRE2_CODE_UNIT_WIDTH before it
// is included; the generic names (pcre2_compile, ...) are macros Swift cannot
// import, so Swift code calls the `_8` functions directly.
#ifndef EDGE_CPCRE2_SHIM_H
#define EDGE_CPCRE2_SHIM_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

// PCRE2_ZERO_TERMINATED is a cast macro ((PCRE2_SIZE)~0): re-export it.
static inline PCRE2_SIZE cpcre2_zero_terminated(void) { return PCRE2_ZERO_TERMINATED; }
static inline int cpcre2_error_nomatch(void) { return PCRE2_ERROR_NOMATCH; }
#endif
