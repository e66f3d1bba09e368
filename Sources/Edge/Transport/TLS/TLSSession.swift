import COpenSSL

/// Per-connection TLS state, one entry per socket slot in the reactor's
/// `TLSTable` slab (plain data, no ARC). It owns the `SSL` (which owns its two
/// memory BIOs: OpenSSL never sees the socket) and one retained reference on
/// the listener's `TLSServerContext`; `Reactor.tlsRelease` frees both exactly
/// once, when the socket slot is freed.
struct TLSSession {
    var ssl: OpaquePointer? = nil
    /// Ciphertext from the socket, read by OpenSSL.
    var rbio: OpaquePointer? = nil
    /// Ciphertext OpenSSL wrote, to be queued for sending.
    var wbio: OpaquePointer? = nil
    /// Retained `TLSServerContext` (callbacks read it during the handshake).
    var context: UnsafeMutableRawPointer? = nil
    /// Client mode (upstream TLS): retained `TLSClientContext` instead.
    var clientContext: UnsafeMutableRawPointer? = nil
    var isClient = false
    var handshakeDone = false
    /// The first bytes were checked for plaintext HTTP.
    var sawFirstBytes = false
    /// close_notify queued: shut the TCP write side once it is sent.
    var shutdownPending = false
    /// Ciphertext bytes at the front of the socket's segment ring (queued or in flight).
    var cipherBytes: Int32 = 0
    /// Bytes of this slot's X-Forwarded-Client-Cert value (0: no verified client certificate).
    var xfccLength: Int32 = 0
    /// ALPN chose "h2": the connection is HTTP/2 from its first bytes (HTTP2/H2Connection.swift).
    var alpnH2 = false
}

/// The reactor's TLS slab: sessions and X-Forwarded-Client-Cert values by
/// socket slot (mmap'd lazily: listeners without TLS cost no memory), and the
/// count of handshakes in progress for the per-worker cap.
struct TLSTable {
    static let xfccCapacity = 2048
    /// One TLS record's worth of plaintext: small segments (a response head and
    /// its body) are gathered here and written as one record, since OpenSSL 3.0
    /// allocates per record written.
    static let scratchCapacity = 16384
    let sessions: UnsafeMutablePointer<TLSSession>
    let xfcc: UnsafeMutablePointer<UInt8>
    let scratch: UnsafeMutableRawPointer
    var handshaking: Int32 = 0

    init(capacity: Int) {
        sessions = lazyArray(capacity)
        xfcc = lazyArray(capacity * TLSTable.xfccCapacity)
        scratch = .allocate(byteCount: TLSTable.scratchCapacity, alignment: 16)
    }
}

/// Why a TLS connection failed, for `edge_tls_handshake_failures_total{reason}`.
enum TLSFailure: Int, CaseIterable {
    case timeout, overCapacity, plaintextHTTP, clientClosed, protocolVersion, noSharedCipher,
         clientCertificate, alpn, badRecord, other
    var label: String {
        switch self {
        case .timeout: return "timeout"
        case .overCapacity: return "handshake_limit"
        case .plaintextHTTP: return "plaintext_http"
        case .clientClosed: return "client_closed"
        case .protocolVersion: return "protocol_version"
        case .noSharedCipher: return "no_shared_cipher"
        case .clientCertificate: return "client_certificate"
        case .alpn: return "no_application_protocol"
        case .badRecord: return "bad_record"
        case .other: return "other"
        }
    }

    /// Classifies the error OpenSSL just queued (call right after the failing call).
    static func fromErrorQueue() -> TLSFailure {
        let e = ERR_peek_last_error()
        ERR_clear_error()
        switch edge_ERR_GET_REASON(e) {
        case SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_WRONG_VERSION_NUMBER, SSL_R_VERSION_TOO_LOW, SSL_R_UNKNOWN_PROTOCOL:
            return .protocolVersion
        case SSL_R_NO_SHARED_CIPHER, SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS, SSL_R_NO_SUITABLE_KEY_SHARE:
            return .noSharedCipher
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE, SSL_R_CERTIFICATE_VERIFY_FAILED, SSL_R_NO_CERTIFICATES_RETURNED:
            return .clientCertificate
        case SSL_R_NO_APPLICATION_PROTOCOL: return .alpn
        case SSL_R_HTTP_REQUEST, SSL_R_HTTPS_PROXY_REQUEST: return .plaintextHTTP
        case SSL_R_UNEXPECTED_EOF_WHILE_READING: return .clientClosed
        case SSL_R_RECORD_LENGTH_MISMATCH, SSL_R_PACKET_LENGTH_TOO_LONG, SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC,
             SSL_R_BAD_RECORD_TYPE, SSL_R_UNEXPECTED_RECORD, SSL_R_UNEXPECTED_MESSAGE, SSL_R_LENGTH_MISMATCH,
             SSL_R_BAD_PACKET_LENGTH, SSL_R_BAD_PACKET:
            return .badRecord
        default: return .other
        }
    }
}
