import DAgentHTTP
import DAgentRouting

// The HTTP listener's options are entries of `NodeOptions.table` (`http`, `http_max_*`, `http_*_timeout`).

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
