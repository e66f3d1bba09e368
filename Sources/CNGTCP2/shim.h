// Thin module over Debian's libngtcp2-dev 0.12.1, libngtcp2-crypto-gnutls-dev
// and libgnutls28-dev 3.7.9 (ngtcp2_crypto_level, connection_close_error,
// the *_versioned entry points). Wrappers for macros Swift cannot import; no logic.
#ifndef EDGE_CNGTCP2_SHIM_H
#define EDGE_CNGTCP2_SHIM_H
#include <malloc.h>
// ngtcp2's own sockaddr types (same layout as the kernel's): ngtcp2.h then
// pulls no socket headers into this module, which would take their macros
// (MSG_DONTWAIT...) away from Swift files that do not import it.
#define NGTCP2_USE_GENERIC_SOCKADDR
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

static inline uint32_t edge_ngtcp2_proto_v1(void) { return NGTCP2_PROTO_VER_V1; }
static inline uint64_t edge_ngtcp2_ms(void) { return NGTCP2_MILLISECONDS; }
static inline uint64_t edge_ngtcp2_seconds(void) { return NGTCP2_SECONDS; }

static inline void edge_ngtcp2_settings_default(ngtcp2_settings *s) { ngtcp2_settings_default(s); }
static inline void edge_ngtcp2_transport_params_default(ngtcp2_transport_params *p) { ngtcp2_transport_params_default(p); }

static inline int edge_ngtcp2_conn_server_new(ngtcp2_conn **pconn, const ngtcp2_cid *dcid, const ngtcp2_cid *scid,
    const ngtcp2_path *path, uint32_t version, const ngtcp2_callbacks *callbacks, const ngtcp2_settings *settings,
    const ngtcp2_transport_params *params, const ngtcp2_mem *mem, void *user_data) {
    return ngtcp2_conn_server_new(pconn, dcid, scid, path, version, callbacks, settings, params, mem, user_data);
}

static inline int edge_ngtcp2_conn_read_pkt(ngtcp2_conn *conn, const ngtcp2_path *path, const ngtcp2_pkt_info *pi,
    const uint8_t *pkt, size_t pktlen, ngtcp2_tstamp ts) {
    return ngtcp2_conn_read_pkt(conn, path, pi, pkt, pktlen, ts);
}

static inline ngtcp2_ssize edge_ngtcp2_conn_writev_stream(ngtcp2_conn *conn, ngtcp2_path *path, ngtcp2_pkt_info *pi,
    uint8_t *dest, size_t destlen, ngtcp2_ssize *pdatalen, uint32_t flags, int64_t stream_id,
    const ngtcp2_vec *datav, size_t datavcnt, ngtcp2_tstamp ts) {
    return ngtcp2_conn_writev_stream(conn, path, pi, dest, destlen, pdatalen, flags, stream_id, datav, datavcnt, ts);
}

static inline ngtcp2_ssize edge_ngtcp2_conn_write_connection_close(ngtcp2_conn *conn, ngtcp2_path *path,
    ngtcp2_pkt_info *pi, uint8_t *dest, size_t destlen, const ngtcp2_connection_close_error *ccerr, ngtcp2_tstamp ts) {
    return ngtcp2_conn_write_connection_close(conn, path, pi, dest, destlen, ccerr, ts);
}

/// A server session without 0-RTT (GNUTLS_SERVER only: no ENABLE_EARLY_DATA).
static inline int edge_gnutls_server_init(gnutls_session_t *s) { return gnutls_init(s, GNUTLS_SERVER); }
static inline int edge_gnutls_alpn_h3(gnutls_session_t s) {
    gnutls_datum_t p = { (unsigned char *)"h3", 2 };
    return gnutls_alpn_set_protocols(s, &p, 1, GNUTLS_ALPN_MANDATORY);
}
static inline int edge_gnutls_random(void *dst, size_t n) { return gnutls_rnd(GNUTLS_RND_RANDOM, dst, n); }
static inline int edge_gnutls_key_random(void *dst, size_t n) { return gnutls_rnd(GNUTLS_RND_KEY, dst, n); }
static inline size_t edge_quic_usable_size(void *p) { return p ? malloc_usable_size(p) : 0; }
#endif
