// Thin module over Debian's libnghttp3-dev 0.8.0 (no recv_settings, no
// is_drained). Wrappers for the versioned macros only; no logic.
#ifndef EDGE_CNGHTTP3_SHIM_H
#define EDGE_CNGHTTP3_SHIM_H
#include <nghttp3/nghttp3.h>

static inline void edge_nghttp3_settings_default(nghttp3_settings *s) { nghttp3_settings_default(s); }
static inline int edge_nghttp3_conn_server_new(nghttp3_conn **pconn, const nghttp3_callbacks *callbacks,
    const nghttp3_settings *settings, const nghttp3_mem *mem, void *user_data) {
    return nghttp3_conn_server_new(pconn, callbacks, settings, mem, user_data);
}
#endif
