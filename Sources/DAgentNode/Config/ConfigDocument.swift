import Foundation
import DAgentRouting

/// A node's YAML config file, read and parsed once. The node's options and
/// each layer's section (`plugins:`, `metrics:`) are all taken from this one
/// parse (`ConfigFile.load(document:)`, `PluginSettings(document:)`,
/// `MetricsSettings(document:)`), so the file is opened once per start or
/// reload and every layer sees the same contents.
public struct ConfigDocument: @unchecked Sendable {
    /// Where it was read from (named in error messages).
    public let path: String
    /// The file's directory: relative paths in the file are taken from it.
    public let baseDir: String
    /// The top-level mapping.
    public let mapping: [String: Any]

    /// Reads and parses `path`; the error names the file and what is wrong.
    public static func load(path: String) throws -> ConfigDocument {
        // Read to the end through a file handle, so a pipe (`--config <(...)`, a FIFO) works too.
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ConfigError("cannot read config file '\(path)'")
        }
        defer { try? handle.close() }
        let data: Data
        do { data = try handle.readToEnd() ?? Data() } catch {
            throw ConfigError("cannot read config file '\(path)': \(error)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError("config file '\(path)' is not UTF-8 text")
        }
        return try ConfigDocument(yaml: text, path: path)
    }

    /// Parses YAML text that came from `path`.
    public init(yaml text: String, path: String) throws {
        self.path = path
        baseDir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        mapping = try ConfigFile.mapping(yaml: text, source: path)
    }

    /// The value of a top-level section, if the file has it.
    public func section(_ key: String) -> Any? { mapping[key] }
}

extension ConfigFile {
    /// The node options of an already parsed config file (`into` gives the defaults).
    public static func load(document: ConfigDocument, into base: NodeConfig? = nil) throws -> NodeConfig {
        var c = base ?? NodeConfig(name: "")
        let dir = (document.path as NSString).deletingLastPathComponent
        try NodeOptions.table.apply(yaml: document.mapping, to: &c, source: document.path, baseDir: dir.isEmpty ? nil : dir,
                                    ignoring: sectionKeys)
        return c
    }
}
