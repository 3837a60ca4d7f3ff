import DAgentHTTP
import DAgentRouting

/// The HTTP listener's options in the YAML config:
///
/// ```yaml
/// http: tcp://127.0.0.1:8080
/// http_max_header_bytes: 16384
/// http_max_body_bytes: 1048576
/// http_max_connections: 1024
/// http_idle_timeout: 60
/// http_handler_timeout: 10
/// ```
extension ConfigFile {
    static let httpKeys: Set<String> = [
        "http", "http_max_header_bytes", "http_max_body_bytes", "http_max_connections", "http_idle_timeout",
        "http_handler_timeout",
    ]

    static func parseHTTP(_ map: [String: Any], source: String, into c: inout NodeConfig) throws {
        func int(_ k: String) throws -> Int? {
            guard let v = map[k] else { return nil }
            if let i = v as? Int { return i }
            throw ConfigError("\(source): \(k) must be an integer (got \(v))")
        }
        func num(_ k: String) throws -> Double? {
            guard let v = map[k] else { return nil }
            if let d = v as? Double { return d }
            if let i = v as? Int { return Double(i) }
            throw ConfigError("\(source): \(k) must be a number (got \(v))")
        }
        if let v = map["http"] {
            guard let s = v as? String else { throw ConfigError("\(source): http must be an address tcp://HOST:PORT") }
            c.http = try NodeConfig.parseHTTPAddress(s)
        }
        if let v = try int("http_max_header_bytes") { c.httpLimits.maxHeaderBytes = v }
        if let v = try int("http_max_body_bytes") { c.httpLimits.maxBodyBytes = v }
        if let v = try int("http_max_connections") { c.httpLimits.maxConnections = v }
        if let v = try num("http_idle_timeout") { c.httpLimits.idleTimeout = v }
        if let v = try num("http_handler_timeout") { c.httpLimits.handlerTimeout = v }
    }
}

extension NodeConfig {
    /// Parses the `http:` / `--http` address: `tcp://HOST:PORT` only.
    public static func parseHTTPAddress(_ text: String) throws(ConfigError) -> Endpoint {
        let e = try Endpoint.parse(text)
        guard case .tcp = e else { throw ConfigError("http: \(text) is not a tcp://HOST:PORT address (the HTTP listener is TCP only)") }
        return e
    }

    func validateHTTP() throws(ConfigError) {
        do { try httpLimits.validate() } catch { throw ConfigError(error.description) }
    }
}
