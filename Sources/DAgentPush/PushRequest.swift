import DAgentWire
import Foundation

/// Where a client resumes a subscription: the epoch it saw, and the last
/// sequence number per topic (`seq` for an exact topic, `seqs` for a pattern).
public struct PushSince: Equatable, Sendable {
    public var epoch: String
    public var seq: UInt64?
    public var seqs: [String: UInt64]

    public init(epoch: String, seq: UInt64? = nil, seqs: [String: UInt64] = [:]) {
        self.epoch = epoch
        self.seq = seq
        self.seqs = seqs
    }
}

/// One operation a browser client sends, parsed from a JSON text frame.
/// `ref` is the client's optional `id`, echoed (as JSON) in the answer.
public enum PushRequest: Equatable, Sendable {
    case sub(ref: String?, pattern: String, since: PushSince?)
    case unsub(ref: String?, pattern: String)
    case pub(ref: String?, topic: String, data: [UInt8])

    /// The client's `id` as JSON text, if it gave one.
    public var ref: String? {
        switch self {
        case .sub(let r, _, _), .unsub(let r, _), .pub(let r, _, _): return r
        }
    }
}

/// Why a client frame was refused: an `error` frame code and a sentence that
/// names the field or the limit. The connection stays open.
public struct PushRequestError: Error, Equatable, Sendable {
    public var code: Int
    public var reason: String
    public var ref: String?
    public var topic: String?

    public init(_ code: Int, _ reason: String, ref: String? = nil, topic: String? = nil) {
        self.code = code
        self.reason = reason
        self.ref = ref
        self.topic = topic
    }
}

extension PushRequest {
    /// Parses one text frame. Never traps: any input gives a request or an error.
    public static func parse(_ bytes: [UInt8], maxTopicBytes: Int) -> Result<PushRequest, PushRequestError> {
        if let publish = parsePublish(bytes, maxTopicBytes: maxTopicBytes) { return .success(publish) }
        return parseJSON(bytes, maxTopicBytes: maxTopicBytes)
    }

    /// `parse` through Foundation's JSON: every frame the fast path (`parsePublish`) does not take.
    static func parseJSON(_ bytes: [UInt8], maxTopicBytes: Int) -> Result<PushRequest, PushRequestError> {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            return .failure(PushRequestError(PushCodes.badRequest, "malformed JSON: the frame (\(bytes.count) bytes) is not a JSON object"))
        }
        guard let obj = object as? [String: Any] else {
            return .failure(PushRequestError(PushCodes.badRequest, "a frame must be a JSON object with an \"op\", like {\"op\":\"sub\",\"topic\":\"news.>\"}"))
        }
        var ref: String?
        if let id = obj["id"] {
            if let s = id as? String, s.utf8.count <= 128 {
                ref = JSONString.quoted(s)
            } else if let n = id as? NSNumber, !isJSONBool(id), let i = Int64(exactly: n.doubleValue) {
                ref = String(i)
            } else {
                return .failure(PushRequestError(PushCodes.badRequest, "\"id\" must be a string of at most 128 bytes or an integer"))
            }
        }
        func fail(_ reason: String, _ code: Int = PushCodes.badRequest, topic: String? = nil) -> Result<PushRequest, PushRequestError> {
            .failure(PushRequestError(code, reason, ref: ref, topic: topic))
        }
        guard let op = obj["op"] as? String else {
            return fail("the frame has no \"op\" (string): one of sub, unsub, pub")
        }
        guard let topic = obj["topic"] as? String else {
            if op != "sub" && op != "unsub" && op != "pub" {
                return fail("unknown op '\(op.prefix(64))': the ops are sub, unsub, pub", PushCodes.unknownOp)
            }
            return fail("\"\(op)\" needs a \"topic\" (string)")
        }
        switch op {
        case "sub", "unsub":
            if let p = PushTopic.problem(pattern: topic, maxBytes: maxTopicBytes) {
                return fail("bad pattern: \(p)", topic: String(topic.prefix(maxTopicBytes)))
            }
            if op == "unsub" { return .success(.unsub(ref: ref, pattern: topic)) }
            var since: PushSince?
            if let s = obj["since"], !(s is NSNull) {
                switch parseSince(s) {
                case .success(let v): since = v
                case .failure(let e): return fail(e.reason, topic: topic)
                }
            }
            return .success(.sub(ref: ref, pattern: topic, since: since))
        case "pub":
            if let p = PushTopic.problem(topic: topic, maxBytes: maxTopicBytes) {
                return fail("bad topic: \(p)", topic: String(topic.prefix(maxTopicBytes)))
            }
            if let b64 = obj["data_b64"] {
                guard let s = b64 as? String, let d = Data(base64Encoded: s) else {
                    return fail("\"data_b64\" must be a base64 string", topic: topic)
                }
                return .success(.pub(ref: ref, topic: topic, data: [UInt8](d)))
            }
            guard let data = obj["data"] else { return fail("\"pub\" needs \"data\" (or \"data_b64\")", topic: topic) }
            if let s = data as? String { return .success(.pub(ref: ref, topic: topic, data: Array(s.utf8))) }
            guard let d = try? JSONSerialization.data(withJSONObject: data, options: [.fragmentsAllowed]) else {
                return fail("\"data\" could not be re-encoded as JSON", topic: topic)
            }
            return .success(.pub(ref: ref, topic: topic, data: [UInt8](d)))
        default:
            return fail("unknown op '\(op.prefix(64))': the ops are sub, unsub, pub", PushCodes.unknownOp)
        }
    }

    static func parseSince(_ value: Any) -> Result<PushSince, SinceError> {
        guard let s = value as? [String: Any] else {
            return .failure(SinceError(reason: "\"since\" must be an object {\"epoch\":E,\"seq\":S}"))
        }
        let epoch: String
        if let e = s["epoch"] as? String {
            epoch = e
        } else if let n = s["epoch"] as? NSNumber, !isJSONBool(s["epoch"]!) {
            epoch = n.stringValue
        } else {
            return .failure(SinceError(reason: "\"since\" needs an \"epoch\" (string)"))
        }
        func seqValue(_ v: Any?) -> UInt64?? {
            guard let v else { return .some(nil) }
            guard let n = v as? NSNumber, !isJSONBool(v), n.doubleValue >= 0, n.doubleValue < 9.0e15,
                  let u = UInt64(exactly: n.doubleValue) else { return nil }
            return .some(u)
        }
        guard let seq = seqValue(s["seq"]) else { return .failure(SinceError(reason: "\"since.seq\" must be a non-negative integer")) }
        var seqs: [String: UInt64] = [:]
        if let m = s["seqs"] {
            guard let dict = m as? [String: Any], dict.count <= 10_000 else {
                return .failure(SinceError(reason: "\"since.seqs\" must be an object {topic: seq} of at most 10000 topics"))
            }
            for (k, v) in dict {
                guard let u = seqValue(v), let u else { return .failure(SinceError(reason: "\"since.seqs\" values must be non-negative integers (topic '\(k.prefix(64))')")) }
                seqs[k] = u
            }
        }
        return .success(PushSince(epoch: epoch, seq: seq, seqs: seqs))
    }
}

/// Why a `since` object was refused.
struct SinceError: Error {
    var reason: String
}

/// True for a JSON `true`/`false` (on Linux, JSONSerialization's numbers also
/// answer `is Bool`; booleans are the NSNumbers of Objective-C type "c").
func isJSONBool(_ v: Any) -> Bool {
    if let n = v as? NSNumber { return String(cString: n.objCType) == "c" }
    return v is Bool
}
