// PCRE2 with 8-bit code units (libpcre2-dev). pcre2.h needs
// PCRE2_CODE_UNIT_WIDTH before it is included; its generic names
// (pcre2_compile, ...) are macros Swift cannot import, so Swift calls the
// `_8` functions (pcre2_compile_8, pcre2_jit_match_8, ...) directly.
#ifndef EDGE_CPCRE2_SHIM_H
#define EDGE_CPCRE2_SHIM_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif
