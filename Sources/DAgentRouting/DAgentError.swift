import DAgentWire

/// A failure reported to a caller of the node API: a wire error code plus a
/// sentence that names the value and the limit involved.
public struct DAgentError: Error, Equatable, CustomStringConvertible, Sendable {
    public var code: Dagent_ErrorCode
    public var reason: String

    public init(_ code: Dagent_ErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// Short, stable name of the code (`no route`, `timeout`, ...).
    public var codeName: String { Self.name(of: code) }

    public var description: String { "\(codeName): \(reason)" }
    // `name(of:)` is generated from the proto: DAgentError-codes.swift (scripts/gen-errors).
}

/// A configuration mistake, with a message that names the offending value.
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
