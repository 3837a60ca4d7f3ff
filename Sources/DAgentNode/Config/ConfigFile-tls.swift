import DAgentRouting
import DAgentTLS

// The TLS options are entries of `NodeOptions.table`: `tls: {cert, key, ca}` in YAML,
// `--tls-cert/--tls-key/--tls-ca` as flags (also `tls_cert:` … in YAML).
extension NodeConfig {
    /// Parses the `tls:` mapping; relative paths are taken from the config file's directory.
    static func parseTLS(_ c: inout NodeConfig, _ value: Any, _ src: OptionContext) throws {
        guard let map = value as? [String: Any] else {
            throw ConfigError("\(src) must be a mapping {cert: FILE, key: FILE, ca: FILE} (got \(value))")
        }
        for key in map.keys.sorted() where !["cert", "key", "ca"].contains(key) {
            throw ConfigError("\(src): unknown key '\(key)' (tls takes cert, key and ca)")
        }
        var files = c.tls ?? TLSFiles(cert: "", key: "", ca: "")
        for (key, path) in [("cert", \TLSFiles.cert), ("key", \TLSFiles.key), ("ca", \TLSFiles.ca)] {
            guard let v = map[key] else { continue }
            guard let s = v as? String, !s.isEmpty else { throw ConfigError("\(src).\(key) must be a file path (got \(v))") }
            files[keyPath: path] = src.absolute(s)
        }
        c.tls = files
    }

    /// Sets one of the TLS files (`--tls-cert` …).
    static func setTLSFile(_ c: inout NodeConfig, _ path: WritableKeyPath<TLSFiles, String>, _ value: String, _ src: OptionContext) {
        var files = c.tls ?? TLSFiles(cert: "", key: "", ca: "")
        files[keyPath: path] = src.absolute(value)
        c.tls = files
    }

    /// With `tls:`, all three files must be there, PEM, and fit together.
    func validateTLS() throws(ConfigError) {
        guard let tls else { return }
        do { _ = try tls.load() } catch { throw ConfigError(error.description) }
    }
}
