import Foundation

// Byte-array views of the security fields, for the modules that do not import
// Foundation (the routing core): the generated types hold `Data`.

extension Dagent_AuthHello {
    /// `nonce` as bytes.
    public var nonceBytes: [UInt8] { get { Array(nonce) } set { nonce = Data(newValue) } }
}

extension Dagent_AuthChallenge {
    public var nonceBytes: [UInt8] { get { Array(nonce) } set { nonce = Data(newValue) } }
    public var proofBytes: [UInt8] { get { Array(proof) } set { proof = Data(newValue) } }
}

extension Dagent_AuthProof {
    public var proofBytes: [UInt8] { get { Array(proof) } set { proof = Data(newValue) } }
}

extension Dagent_Register {
    /// `session_secret` as bytes (empty: asks for a new session).
    public var sessionSecretBytes: [UInt8] { get { Array(sessionSecret) } set { sessionSecret = Data(newValue) } }
}

extension Dagent_RegisterResult {
    public var sessionSecretBytes: [UInt8] { get { Array(sessionSecret) } set { sessionSecret = Data(newValue) } }
}
