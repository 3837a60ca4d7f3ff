import NIOCore

/// One client's send queue: the frames held while its socket is not writable,
/// bounded in bytes. A frame with a conflation key replaces the queued frame of
/// the same key (the latest value of a topic wins) instead of adding to it.
public struct PushSendQueue {
    /// What `push` did.
    public enum Outcome: Equatable {
        /// Added at the end.
        case queued
        /// Replaced the older queued frame of the same key (one message dropped).
        case replaced
        /// Taking it would exceed `limitBytes`; nothing was changed.
        case overLimit(wouldBe: Int)
    }

    struct Entry {
        var frame: ByteBuffer
        var key: String?
    }

    public let limitBytes: Int
    /// Bytes of the frames held now.
    public private(set) var bytes = 0
    var entries = CircularBuffer<Entry?>()
    /// Absolute index of `entries.first`.
    var head = 0
    /// Conflation key → absolute index of its queued frame.
    var keyed: [String: Int] = [:]
    /// Frames held now.
    public private(set) var count = 0

    public init(limitBytes: Int) {
        self.limitBytes = limitBytes
    }

    public var isEmpty: Bool { count == 0 }

    /// Holds `frame` for later; with `conflateKey`, replaces the frame of that key.
    public mutating func push(_ frame: ByteBuffer, conflateKey: String? = nil) -> Outcome {
        let size = frame.readableBytes
        if let key = conflateKey, let at = keyed[key], let old = entries[offset: at - head] {
            let after = bytes - old.frame.readableBytes + size
            if after > limitBytes { return .overLimit(wouldBe: after) }
            entries[offset: at - head] = Entry(frame: frame, key: key)
            bytes = after
            return .replaced
        }
        if bytes + size > limitBytes { return .overLimit(wouldBe: bytes + size) }
        if let key = conflateKey { keyed[key] = head + entries.count }
        entries.append(Entry(frame: frame, key: conflateKey))
        bytes += size
        count += 1
        return .queued
    }

    /// The oldest frame held, removed.
    public mutating func pop() -> ByteBuffer? {
        while let first = entries.popFirst() {
            head += 1
            guard let e = first else { continue }
            if let key = e.key { keyed[key] = nil }
            bytes -= e.frame.readableBytes
            count -= 1
            return e.frame
        }
        return nil
    }

    /// Drops everything (the client is gone).
    public mutating func removeAll() {
        entries.removeAll()
        keyed.removeAll()
        bytes = 0
        count = 0
    }
}
