import DAgentState
import DAgentWire
import Foundation

/// The common `@state` answers written by hand, without Foundation's `JSONEncoder`: once
/// per write or read. They are the bytes `StateCoding.encode(StateAnswer(result))` gives
/// (sorted keys, snake_case, `/` escaped as `\/`, absent fields omitted), so a client
/// cannot tell which path wrote an answer.
public enum StateAnswerJSON {
    /// The answer to a put, a delete or a found get; nil for every other result, and for
    /// records whose key or value is not valid UTF-8 (the general path substitutes U+FFFD).
    public static func encode(_ result: StateResult) -> Data? {
        guard case let .ok(reply) = result else { return nil }
        var w = AnswerWriter()
        switch reply {
        case let .put(revision, previous):
            w.raw("{\"ok\":true,")
            if let previous {
                w.raw("\"previous\":")
                guard w.record(previous) else { return nil }
                w.raw(",")
            }
            w.raw("\"revision\":")
            w.int(revision)
            w.raw("}")
        case let .record(record, revision):
            w.raw("{\"ok\":true,\"record\":")
            guard w.record(record) else { return nil }
            w.raw(",\"revision\":")
            w.int(revision)
            w.raw("}")
        case let .deleted(revision, deleted):
            w.raw("{\"deleted\":[")
            for (n, record) in deleted.enumerated() {
                if n > 0 { w.raw(",") }
                guard w.record(record) else { return nil }
            }
            w.raw("],\"ok\":true,\"revision\":")
            w.int(revision)
            w.raw("}")
        default:
            return nil
        }
        return Data(w.bytes)
    }
}

/// Appends JSON to a byte array, escaping strings as Foundation's `JSONEncoder` does.
struct AnswerWriter {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(192) }

    mutating func raw(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    mutating func int(_ v: Int64) {
        if v < 0 {
            bytes.append(UInt8(ascii: "-"))
            unsigned(v.magnitude)
        } else {
            unsigned(UInt64(v))
        }
    }

    mutating func unsigned(_ v: UInt64) {
        var divisor: UInt64 = 1
        while v / divisor >= 10 { divisor *= 10 }
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(v / divisor % 10))
            divisor /= 10
        } while divisor > 0
    }

    /// A record as `StateRecordJSON` encodes; false if its key or value is not valid UTF-8.
    mutating func record(_ r: KVRecord) -> Bool {
        raw("{\"create_revision\":")
        int(r.createRevision)
        raw(",\"key\":")
        guard string(r.key) else { return false }
        if let lease = r.lease {
            raw(",\"lease\":")
            unsigned(lease)
        }
        raw(",\"mod_revision\":")
        int(r.modRevision)
        raw(",\"value\":")
        guard string(r.value) else { return false }
        raw(",\"version\":")
        int(r.version)
        raw("}")
        return true
    }

    /// `text` as a JSON string, escaped as `JSONEncoder` escapes; false if it is not valid UTF-8.
    mutating func string(_ text: [UInt8]) -> Bool {
        JSONString.writeAsJSONEncoder(text, into: &bytes)
    }
}
