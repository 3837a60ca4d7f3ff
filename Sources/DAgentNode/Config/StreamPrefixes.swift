import DAgentRouting
import Foundation

/// One entry of the `streams:` option of a root replica: keys (and watch prefixes, lock
/// names) starting with `prefix` live in Raft stream `stream`.
public struct StreamPrefix: Equatable, Sendable {
    public var prefix: String
    public var stream: UInt64

    public init(prefix: String, stream: UInt64) {
        self.prefix = prefix
        self.stream = stream
    }

    /// Parses `PREFIX=STREAM,PREFIX=STREAM,...` (the flag and YAML form). Errors name
    /// the entry: a missing `=`, an empty prefix, a stream id that is not a positive
    /// integer, a prefix given twice.
    public static func parseList(_ text: String, context: String) throws -> [StreamPrefix] {
        var out: [StreamPrefix] = []
        for raw in text.split(separator: ",", omittingEmptySubsequences: true) {
            let item = raw.trimmingCharacters(in: .whitespaces)
            guard let eq = item.lastIndex(of: "=") else {
                throw ConfigError("\(context): entry '\(item)' must be PREFIX=STREAM (e.g. orders/=2)")
            }
            let prefix = String(item[..<eq]), id = String(item[item.index(after: eq)...])
            guard !prefix.isEmpty else { throw ConfigError("\(context): entry '\(item)' has an empty prefix (unmapped keys go to stream 1)") }
            guard let stream = UInt64(id), stream >= 1 else {
                throw ConfigError("\(context): entry '\(item)': stream '\(id)' must be an integer >= 1")
            }
            guard !out.contains(where: { $0.prefix == prefix }) else { throw ConfigError("\(context): prefix '\(prefix)' is mapped twice") }
            out.append(StreamPrefix(prefix: prefix, stream: stream))
        }
        return out
    }

    /// The stream of `key`: the longest matching prefix's, else nil (stream 1).
    public static func stream(of key: String, in map: [StreamPrefix]) -> UInt64? {
        var best: StreamPrefix?
        for p in map where key.hasPrefix(p.prefix) && p.prefix.count > (best?.prefix.count ?? -1) { best = p }
        return best?.stream
    }
}
