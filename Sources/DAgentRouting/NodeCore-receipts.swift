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
        var answer = Dagent_Envelope()
        answer.src = config.name
        answer.dst = m.src
        answer.type = m.type
        answer.kind = .response
        answer.cookie = m.cookie
        answer.hopLimit = config.hopLimit
        route(answer, nowNs: nowNs)
    }

    /// Answers `m`'s sender with an ERROR (`code`, `reason`) instead of a
    /// receipt: the message was not accepted. No-op for a message that did not
    /// ask for a receipt (one-way messages are counted by whoever dropped them).
    public func refuseDelivery(_ m: DataMessage, _ code: Dagent_ErrorCode, _ reason: String, nowNs: UInt64) {
        guard Self.wantsReceipt(m) else { return }
        var header = Dagent_Envelope()   // what `fail` reads; the payload is not sent back
        header.src = m.src
        header.dst = m.dst
        header.type = m.type
        header.kind = m.kind
        header.id = m.id
        header.cookie = m.cookie
        header.sendTimeNs = m.sendTimeNs
        fail(header, code, reason, nowNs: nowNs)
    }
}
