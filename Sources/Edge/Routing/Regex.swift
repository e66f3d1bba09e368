import CPCRE2

/// PCRE2 (8-bit, byte semantics, no UTF mode) behind the few calls Edge needs.
/// Every route regex is a full match: compiled with ANCHORED|ENDANCHORED, so
/// `^...$` in a pattern is harmless but never required. Byte semantics because
/// paths, header values and query strings are raw bytes that need not be UTF-8.
enum Regex {
    static let compileOptions: UInt32 = UInt32(PCRE2_ANCHORED) | UInt32(PCRE2_ENDANCHORED)

    /// Why a pattern does not compile: PCRE2's message and the byte offset it points at.
    struct CompileError: Error, Equatable {
        var message: String
        var offset: Int
    }

    /// Compiles `pattern` (JIT too when available). The caller owns the result
    /// and releases it with `free(_:)`.
    static func compile(_ pattern: String) -> Result<CompiledRegex, CompileError> {
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        let bytes = Array(pattern.utf8)
        let code = bytes.withUnsafeBufferPointer { b -> OpaquePointer? in
            // A non-nil pointer even for "", so PCRE2 does not read through NULL.
            let base = b.baseAddress ?? UnsafePointer(emptySubject)
            return pcre2_compile_8(base, b.count, compileOptions, &errorCode, &errorOffset, nil)
        }
        guard let code else {
            return .failure(CompileError(message: errorMessage(errorCode), offset: errorOffset))
        }
        let jit = pcre2_jit_compile_8(code, UInt32(PCRE2_JIT_COMPLETE)) == 0
        return .success(CompiledRegex(code: code, jit: jit))
    }

    /// Loader-side check: nil when the pattern compiles, else PCRE2's reason.
    static func validate(_ pattern: String) -> CompileError? {
        switch compile(pattern) {
        case .success(let r): free(r); return nil
        case .failure(let e): return e
        }
    }

    static func free(_ r: CompiledRegex) {
        if let code = r.code { pcre2_code_free_8(code) }
    }

    static func errorMessage(_ code: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 256)
        let n = buf.withUnsafeMutableBufferPointer { pcre2_get_error_message_8(code, $0.baseAddress, $0.count) }
        guard n > 0 else { return "PCRE2 error \(code)" }
        return String(decoding: buf[0..<Int(n)], as: UTF8.self)
    }

    /// One match-data block with a single ovector pair. Matching only asks
    /// "does it match", so one small block serves every regex of every table;
    /// what it must not be is shared between threads (PCRE2 writes into it).
    static func makeMatchData() -> OpaquePointer? { pcre2_match_data_create_8(1, nil) }

    static func freeMatchData(_ md: OpaquePointer?) {
        if let md { pcre2_match_data_free_8(md) }
    }

    /// Full match of `subject` against `r`, using the caller's (thread-owned)
    /// match data. No allocation: JIT code runs on a 32KiB machine-stack area;
    /// the interpreter (no JIT) keeps its frames in `matchData` after first use.
    @inline(__always)
    static func matches(_ r: CompiledRegex, _ subject: UnsafeRawBufferPointer, matchData: OpaquePointer) -> Bool {
        guard let code = r.code else { return false }
        let base = subject.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(emptySubject)
        let ctx = matchContext
        let rc = r.jit
            ? pcre2_jit_match_8(code, base, subject.count, 0, 0, matchData, ctx)
            : pcre2_match_8(code, base, subject.count, 0, 0, matchData, ctx)
        // rc == 0 means "matched, ovector too small for the groups": still a match.
        // Errors (match/JIT-stack limit hit) count as "no match".
        return rc >= 0
    }

    /// Most backtracking steps one match may take (PCRE2's default is 10
    /// million): a client-chosen path or header must not pin a reactor on a
    /// catastrophically backtracking pattern. Hitting it means "no match".
    static let matchLimit: UInt32 = 100_000

    /// Process-wide and never modified after creation, which PCRE2 allows to be
    /// shared by all threads.
    nonisolated(unsafe) static let matchContext: OpaquePointer? = {
        let ctx = pcre2_match_context_create_8(nil)
        if let ctx { pcre2_set_match_limit_8(ctx, matchLimit) }
        return ctx
    }()

    /// A valid pointer for zero-length subjects and patterns (never read).
    nonisolated(unsafe) static let emptySubject: UnsafeMutablePointer<UInt8> = {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        p.initialize(to: 0)
        return p
    }()
}

/// A compiled pattern owned by a `RouteTable` (freed in its deinit). Immutable
/// after compile, so reactors may run it concurrently.
struct CompiledRegex: @unchecked Sendable {
    var code: OpaquePointer?
    var jit: Bool
}
