// OpenSSL 3.0 (Debian libssl-dev). Many of OpenSSL's controls are
// function-like macros over SSL_ctrl/SSL_CTX_ctrl/BIO_ctrl, which Swift cannot
// import: each one Edge uses gets a `static inline` wrapper here, named
// `edge_<macro name>`. Keep this file to wrappers only, no logic.
#ifndef EDGE_COPENSSL_SHIM_H
#define EDGE_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

static inline long edge_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long edge_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_max_proto_version(ctx, version);
}
static inline long edge_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
static inline long edge_BIO_set_mem_eof_return(BIO *bio, int value) {
    return BIO_set_mem_eof_return(bio, value);
}
static inline size_t edge_BIO_ctrl_pending(BIO *bio) {
    return BIO_ctrl_pending(bio);
}
static inline long edge_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}
static inline long edge_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}
static inline long edge_SSL_CTX_set_tlsext_ticket_keys(SSL_CTX *ctx, void *keys, long length) {
    return SSL_CTX_set_tlsext_ticket_keys(ctx, keys, length);
}
static inline long edge_BIO_get_mem_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}
static inline int edge_ERR_GET_REASON(unsigned long e) {
    return ERR_GET_REASON(e);
}
static inline EVP_PKEY *edge_EVP_EC_gen(const char *curve) {
    return EVP_EC_gen(curve);
}
static inline EVP_PKEY *edge_EVP_RSA_gen(unsigned int bits) {
    return EVP_RSA_gen(bits);
}
static inline int edge_SSL_session_reused(SSL *ssl) {
    return SSL_session_reused(ssl);
}
static inline uint64_t edge_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t edge_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline uint64_t edge_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t edge_SSL_OP_NO_TICKET(void) { return SSL_OP_NO_TICKET; }
static inline uint64_t edge_SSL_OP_IGNORE_UNEXPECTED_EOF(void) { return SSL_OP_IGNORE_UNEXPECTED_EOF; }
static inline uint64_t edge_SSL_OP_NO_ANTI_REPLAY(void) { return SSL_OP_NO_ANTI_REPLAY; }
static inline unsigned long edge_XN_FLAG_RFC2253(void) { return XN_FLAG_RFC2253; }
static inline int edge_BIO_reset(BIO *bio) { return (int)BIO_reset(bio); }
// JWT keys from JWK components (Policy/JWTKeys.swift).
static inline int edge_EVP_PKEY_PUBLIC_KEY(void) { return EVP_PKEY_PUBLIC_KEY; }
#endif
