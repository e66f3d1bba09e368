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
// JWT keys from JWK components (Policy/JWTKeys.swift).
static inline int edge_EVP_PKEY_PUBLIC_KEY(void) { return EVP_PKEY_PUBLIC_KEY; }
#endif
