import DAgentWire

extension PushRequest {
    /// The common client publish, `{"op":"pub","topic":T,"data":TEXT}` (keys in any order,
    /// an optional string `"id"`, other string members ignored), read without Foundation:
    /// once per published message. Nil for anything else (escapes in a string, a non-string
    /// value, a duplicate key, `data_b64`, another op, a bad topic, invalid UTF-8, ...): those
    /// frames go to `parse`, which gives the same answer for every frame this one takes.
    static func parsePublish(_ bytes: [UInt8], maxTopicBytes: Int) -> PushRequest? {
        bytes.withUnsafeBufferPointer { parsePublish($0, maxTopicBytes: maxTopicBytes) }
    }

    static func parsePublish(_ b: UnsafeBufferPointer<UInt8>, maxTopicBytes: Int) -> PushRequest? {
        var i = 0
        let n = b.count
        func skipSpace() {
            while i < n, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
        }
        /// A string with no escape and no control character: its bytes' range.
        func plainString() -> Range<Int>? {
            guard i < n, b[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            let start = i
            while i < n {
                let c = b[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    return start..<(i - 1)
                }
                if c == UInt8(ascii: "\\") || c < 0x20 { return nil }
                i += 1
            }
            return nil
        }
        func equals(_ r: Range<Int>, _ s: StaticString) -> Bool {
            guard r.count == s.utf8CodeUnitCount else { return false }
            let p = s.utf8Start
            for k in 0..<r.count where b[r.lowerBound + k] != p[k] { return false }
            return true
        }
        func text(_ r: Range<Int>) -> String? {
            String(validating: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self)
        }

        skipSpace()
        guard i < n, b[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        var op: Range<Int>?, topic: Range<Int>?, data: Range<Int>?, id: Range<Int>?
        var keys: [Range<Int>] = []
        skipSpace()
        if i < n, b[i] == UInt8(ascii: "}") { return nil }
        while true {
            skipSpace()
            guard let key = plainString() else { return nil }
            skipSpace()
            guard i < n, b[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            skipSpace()
            guard let value = plainString() else { return nil }
            // A key given twice: left to the full parser (and Foundation's rule for it).
            for k in keys where k.count == key.count && b[k].elementsEqual(b[key]) { return nil }
            keys.append(key)
            if equals(key, "op") { op = value }
            else if equals(key, "topic") { topic = value }
            else if equals(key, "data") { data = value }
            else if equals(key, "id") { id = value }
            else if equals(key, "data_b64") || equals(key, "since") { return nil }
            else if text(key) == nil || text(value) == nil { return nil }
            skipSpace()
            guard i < n else { return nil }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            guard b[i] == UInt8(ascii: "}") else { return nil }
            i += 1
            break
        }
        skipSpace()
        guard i == n, let op, equals(op, "pub"), let topic, let data,
              let topicText = text(topic), text(data) != nil else { return nil }
        var ref: String?
        if let id {
            guard id.count <= 128, let s = text(id) else { return nil }
            ref = JSONString.quoted(s)
        }
        guard PushTopic.problem(topic: topicText, maxBytes: maxTopicBytes) == nil else { return nil }
        return .pub(ref: ref, topic: topicText, data: Array(b[data]))
    }
}
