/// One problem in a topology file: where (line, key path) and what.
public struct TopologyIssue: Sendable, Equatable, CustomStringConvertible {
    /// 1-based line in the file (0 when unknown).
    public var line: Int
    /// Dotted path of the key, e.g. `agents.a1.processes.worker.depends_on`.
    public var key: String
    public var message: String

    public init(line: Int, key: String, _ message: String) {
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String { "line \(line): \(key.isEmpty ? "" : key + ": ")\(message)" }
}

/// A topology file that cannot be deployed, with every problem found in it.
public struct TopologyError: Error, Sendable, CustomStringConvertible {
    public var source: String
    public var issues: [TopologyIssue]

    public init(source: String, issues: [TopologyIssue]) {
        self.source = source
        self.issues = issues
    }

    public var description: String {
        let name = source.isEmpty ? "topology" : source
        return issues.map { "\(name):\($0.line): \($0.key.isEmpty ? "" : $0.key + ": ")\($0.message)" }.joined(separator: "\n")
    }
}
