import Foundation
import Yams
import DAgentRouting

/// The one way config files are read as YAML (`ConfigFile`, the `plugins` and `metrics`
/// sections). `Yams.load` traps on a mapping key that is not a plain value (`[]: 1`,
/// `{a: 1}: 2`: found by `scripts/fuzz config`), so the document is composed first and
/// such a key is refused with its line; only then is it loaded.
public enum ConfigYAML {
    public static func load(yaml text: String, source: String) throws -> Any? {
        guard let root = try Yams.compose(yaml: text) else { return nil }
        if let problem = keyProblem(root) { throw ConfigError("\(source): \(problem)") }
        return try Yams.load(yaml: text)
    }

    /// The first mapping key that is not a scalar, described with its line.
    static func keyProblem(_ node: Yams.Node) -> String? {
        var stack = [node]
        while let n = stack.popLast() {
            switch n {
            case .mapping(let m):
                for (key, value) in m {
                    guard case .scalar = key else {
                        let line = key.mark.map { "line \($0.line): " } ?? ""
                        return "\(line)a mapping key must be a plain value, not a \(key.isMapping ? "mapping" : "sequence or alias")"
                    }
                    stack.append(value)
                }
            case .sequence(let s): stack.append(contentsOf: s)
            default: break
            }
        }
        return nil
    }
}

private extension Yams.Node {
    var isMapping: Bool { if case .mapping = self { return true } else { return false } }
}
