/// A place a link can be made: a TCP host and port, or a message-queue path.
public enum Endpoint: Equatable, Hashable, Sendable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case msgq(path: String)

    public var description: String {
        switch self {
        case let .tcp(host, port): return "tcp://\(host):\(port)"
        case let .msgq(path): return "msgq://\(path)"
        }
    }

    /// Parses `tcp://HOST:PORT` or `msgq://PATH`.
    public static func parse(_ text: String) throws(ConfigError) -> Endpoint {
        let s = text.trimmingCharacters(in: .whitespaces)
        if s.hasPrefix("tcp://") {
            let rest = String(s.dropFirst(6))
            guard let colon = rest.lastIndex(of: ":") else {
                throw ConfigError("address '\(text)' has no port; expected tcp://HOST:PORT")
            }
            var host = String(rest[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw ConfigError("address '\(text)' has no host; expected tcp://HOST:PORT") }
            guard let port = Int(rest[rest.index(after: colon)...]), (0...65535).contains(port) else {
                throw ConfigError("address '\(text)' has a bad port; expected tcp://HOST:PORT with PORT in 0...65535")
            }
            return .tcp(host: host, port: port)
        }
        if s.hasPrefix("msgq://") {
            let path = String(s.dropFirst(7))
            guard !path.isEmpty else { throw ConfigError("address '\(text)' has no path; expected msgq://PATH") }
            return .msgq(path: path)
        }
        throw ConfigError("address '\(text)' is not understood; expected tcp://HOST:PORT or msgq://PATH")
    }
}

/// The original dcnode address shorthand, mapped onto listen/parent endpoints:
///
/// - `pull:tcp://H:P` — listen for children
/// - `push:tcp://H:P[,tcp://H:P...]` — connect to a parent (failover list)
/// - `proxy:tcp://LISTEN->tcp://PARENT[,tcp://PARENT2...]` — both
/// - `pull:msgq://PATH`, `push:msgq://PATH` — message-queue links
/// - a bare `tcp://H:P` is taken as `push:`
public struct Shorthand: Equatable, Sendable {
    public var listen: [Endpoint] = []
    public var parents: [Endpoint] = []

    public static func parse(_ text: String) throws(ConfigError) -> Shorthand {
        var result = Shorthand()
        if text.hasPrefix("pull:") {
            result.listen = [try Endpoint.parse(String(text.dropFirst(5)))]
        } else if text.hasPrefix("push:") {
            result.parents = try parseList(String(text.dropFirst(5)))
        } else if text.hasPrefix("proxy:") {
            let body = String(text.dropFirst(6))
            guard let arrow = body.range(of: "->") else {
                throw ConfigError("shorthand '\(text)' needs '->': proxy:tcp://LISTEN->tcp://PARENT")
            }
            result.listen = [try Endpoint.parse(String(body[..<arrow.lowerBound]))]
            result.parents = try parseList(String(body[arrow.upperBound...]))
        } else if text.hasPrefix("tcp://") || text.hasPrefix("msgq://") {
            result.parents = try parseList(text)
        } else {
            throw ConfigError("shorthand '\(text)' is not understood; use pull:, push: or proxy: (e.g. pull:tcp://127.0.0.1:7000)")
        }
        return result
    }

    /// Parses a comma-separated list of endpoints.
    public static func parseList(_ text: String) throws(ConfigError) -> [Endpoint] {
        var out: [Endpoint] = []
        for part in text.split(separator: ",") where !part.trimmingCharacters(in: .whitespaces).isEmpty {
            out.append(try Endpoint.parse(String(part)))
        }
        if out.isEmpty { throw ConfigError("empty address list '\(text)'") }
        return out
    }
}



import Foundation
import DAgentRouting
import DAgentLink
import DAgentMsgq
