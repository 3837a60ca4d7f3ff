import Crypto
import DAgentWire

/// The cluster-secret handshake of one link (secret mode), as a pure state
/// machine: frames in, frames to send out, no I/O. Both ends prove that they
/// know the secret with HMAC-SHA256 over both sides' fresh nonces, so the
/// secret never crosses the wire and a recorded handshake cannot be replayed
/// (the other side's nonce is new on every connection):
///
/// ```
/// dialer   -> listener  AuthHello     { nonce_d }
/// listener -> dialer    AuthChallenge { nonce_l, HMAC(K, "dagent-auth-v1 listener" | nonce_d | nonce_l) }
/// dialer   -> listener  AuthProof     { HMAC(K, "dagent-auth-v1 dialer" | nonce_d | nonce_l) }
/// ```
///
/// The dialer (a child, or the lower-id replica of a peer link) checks the
/// listener's proof before it sends its own, so a fake parent learns nothing
/// it could use elsewhere; the labels differ, so one side's proof is never
/// valid as the other's. Proofs are checked in constant time.
public struct AuthHandshake: Sendable {
    public enum Role: Sendable { case dialer, listener }

    /// What the driver does after a frame went in.
    public enum Step: Equatable, Sendable {
        /// Send this frame; the handshake goes on.
        case send(Dagent_Frame.OneOf_Body)
        /// The peer is authenticated; send the frame, if any, then carry on
        /// (the dialer sends Register or PeerHello next).
        case authenticated(send: Dagent_Frame.OneOf_Body?)
        /// The peer failed; refuse the link with this reason.
        case failed(String)
    }

    public static let nonceBytes = 32
    public static let version: UInt32 = 1
    static let listenerLabel = Array("dagent-auth-v1 listener".utf8)
    static let dialerLabel = Array("dagent-auth-v1 dialer".utf8)

    public let role: Role
    /// True once the peer proved it knows the secret.
    public private(set) var isAuthenticated = false
    private let secret: [UInt8]
    private let ownNonce: [UInt8]
    private var dialerNonce: [UInt8] = []
    private var listenerNonce: [UInt8] = []
    private var finished = false

    /// - Parameters:
    ///   - secret: the cluster secret (non-empty).
    ///   - nonce: `nonceBytes` fresh random bytes (seeded in tests).
    public init(role: Role, secret: String, nonce: [UInt8]) {
        precondition(!secret.isEmpty && nonce.count == Self.nonceBytes)
        self.role = role
        self.secret = Array(secret.utf8)
        self.ownNonce = nonce
        if role == .dialer { dialerNonce = nonce } else { listenerNonce = nonce }
    }

    /// The dialer's first frame.
    public func hello() -> Dagent_AuthHello {
        var h = Dagent_AuthHello()
        h.nonceBytes = dialerNonce
        h.version = Self.version
        return h
    }

    /// What a listener *without* a secret answers to an AuthHello: a challenge
    /// with no proof, so the dialer knows at once that this node has no secret.
    public static func noSecretChallenge(nonce: [UInt8]) -> Dagent_AuthChallenge {
        var c = Dagent_AuthChallenge()
        c.nonceBytes = nonce
        return c
    }

    /// Feeds one frame the peer sent while the handshake runs.
    public mutating func receive(_ body: Dagent_Frame.OneOf_Body?) -> Step {
        guard !finished else { return fail("a handshake frame after the handshake ended") }
        switch (role, body) {
        case (.listener, .authHello(let hello)?) where dialerNonce.isEmpty:
            if hello.version != Self.version {
                return fail("handshake version \(hello.version) not supported (this node speaks \(Self.version))")
            }
            let nonce = hello.nonceBytes
            if nonce.count != Self.nonceBytes {
                return fail("AuthHello nonce of \(nonce.count) bytes (must be \(Self.nonceBytes))")
            }
            if nonce == ownNonce { return fail("AuthHello echoes this node's own nonce") }
            dialerNonce = nonce
            var c = Dagent_AuthChallenge()
            c.nonceBytes = listenerNonce
            c.proofBytes = mac(Self.listenerLabel)
            return .send(.authChallenge(c))
        case (.listener, .authProof(let proof)?) where !dialerNonce.isEmpty:
            guard verify(proof.proofBytes, Self.dialerLabel) else {
                return fail("wrong proof of the cluster secret (the peer's secret differs from this node's)")
            }
            finished = true
            isAuthenticated = true
            return .authenticated(send: nil)
        case (.dialer, .authChallenge(let challenge)?):
            let nonce = challenge.nonceBytes
            if nonce.count != Self.nonceBytes {
                return fail("AuthChallenge nonce of \(nonce.count) bytes (must be \(Self.nonceBytes))")
            }
            if nonce == ownNonce { return fail("AuthChallenge echoes this node's own nonce (a reflection)") }
            listenerNonce = nonce
            if challenge.proofBytes.isEmpty {
                return fail("the peer has no cluster secret configured, but this node requires one")
            }
            guard verify(challenge.proofBytes, Self.listenerLabel) else {
                return fail("the peer did not prove it knows the cluster secret (its secret differs from this node's, or it is not who it claims)")
            }
            finished = true
            isAuthenticated = true
            var p = Dagent_AuthProof()
            p.proofBytes = mac(Self.dialerLabel)
            return .authenticated(send: .authProof(p))
        default:
            let what = body.map { "\($0)".prefix(40) } ?? "an empty frame"
            return fail("unexpected \(what) during the cluster secret handshake")
        }
    }

    private mutating func fail(_ why: String) -> Step {
        finished = true
        return .failed(why)
    }

    private func transcript(_ label: [UInt8]) -> [UInt8] { label + dialerNonce + listenerNonce }

    private var key: SymmetricKey { SymmetricKey(data: secret) }

    private func mac(_ label: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: transcript(label), using: key))
    }

    /// Constant-time check (swift-crypto compares the codes without an early exit).
    private func verify(_ proof: [UInt8], _ label: [UInt8]) -> Bool {
        proof.count == SHA256.byteCount
            && HMAC<SHA256>.isValidAuthenticationCode(proof, authenticating: transcript(label), using: key)
    }

    /// `nonceBytes` bytes from the system's random source.
    public static func randomNonce() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<nonceBytes).map { _ in UInt8.random(in: 0...255, using: &g) }
    }
}
