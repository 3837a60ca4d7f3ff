import DAgentWire
import Foundation

/// The bench client's `@state` requests and answer check, written without Foundation's JSON:
/// the load generator shares the cores with the replicas it measures, so it should spend
/// as little per request as the etcd driver does (which writes its bodies by hand too and
/// only reads the HTTP status).
enum StateBenchJSON {
    /// `{"op":"put","key":KEY,"value":VALUE}`, `quotedValue` already a JSON string.
    static func put(key: String, quotedValue: String) -> Data {
        Data("{\"op\":\"put\",\"key\":\(JSONString.quoted(key)),\"value\":\(quotedValue)}".utf8)
    }

    /// `{"op":"get","key":KEY}`.
    static func get(key: String) -> Data {
        Data("{\"op\":\"get\",\"key\":\(JSONString.quoted(key))}".utf8)
    }

    /// What an answer says.
    enum Outcome: Equatable { case ok, retry, refused }

    static let okPrefix = Array("{\"ok\":true".utf8)

    /// A put or get answer starts with `{"ok":true` (its keys are sorted, and a success
    /// has no `code`, `deleted` or `error`); anything else is read in full.
    static func outcome(_ payload: Data) -> Outcome {
        if payload.starts(with: okPrefix) { return .ok }
        let obj = try? JSONSerialization.jsonObject(with: payload) as? [String: Any]
        if obj?["ok"] as? Bool == true { return .ok }
        if obj?["retry"] as? Bool == true { return .retry }
        return .refused
    }
}
