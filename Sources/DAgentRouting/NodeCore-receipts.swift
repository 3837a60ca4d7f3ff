import DAgentWire

/// Delivery receipts. A DATA that carries a cookie asks its destination for a
/// receipt; the core puts it in the inbox like any message, and the driver
/// answers once the message was accepted by whatever consumes it (a handler
/// that ran, or a bounded handler queue such as the plugin host's that took
/// it), so a receipt never promises a delivery that a full queue then drops.
extension NodeCore {
    /// True if `m` asks for a delivery receipt.
    @inline(__always)
    public static func wantsReceipt(_ m: DataMessage) -> Bool { m.kind == .data && m.cookie != 0 }

    /// Sends `m`'s sender its delivery receipt (an empty RESPONSE with the
    /// cookie). No-op for a message that did not ask for one.
    public func acceptDelivery(_ m: DataMessage, nowNs: UInt64) {
        guard Self.wantsReceipt(m) else { return }
        answerEmpty(m.headerEnvelope, nowNs: nowNs)
    }

    /// Answers `m`'s sender with an ERROR (`code`, `reason`) instead of a
    /// receipt: the message was not accepted. No-op for a message that did not
    /// ask for a receipt (one-way messages are counted by whoever dropped them).
    public func refuseDelivery(_ m: DataMessage, _ code: Dagent_ErrorCode, _ reason: String, nowNs: UInt64) {
        guard Self.wantsReceipt(m) else { return }
        fail(m.headerEnvelope, code, reason, nowNs: nowNs)   // the payload is not sent back
    }
}
