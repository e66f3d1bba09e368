/// The protocol a downstream connection speaks to its client. Dispatch is a
/// `switch` over this enum (no existentials, no closures per request); `h2`
/// and `h3` join as cases when their glue lands.
enum DownstreamCodec: UInt8 {
    case h1
}
