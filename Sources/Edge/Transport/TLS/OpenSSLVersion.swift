import COpenSSL

/// The linked OpenSSL's version string ("OpenSSL 3.0.x ..."), for `edge --version` and logs.
enum OpenSSLInfo {
    static var version: String { String(cString: OpenSSL_version(OPENSSL_VERSION)) }
}
