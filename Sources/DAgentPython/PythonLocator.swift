import Foundation
import DAgentNode
import DAgentRouting

/// Finds the directory that holds the pure-Python `dagent` package
/// (`python/dagent/` in the repository), which the embedded host imports.
public enum PythonLocator {
    /// In order: `python_path` (config / --python-path), `$DAGENT_PYTHON_PATH`,
    /// a `python/` directory next to the executable or up to six levels above
    /// it (a repository build: `.build/<triple>/debug/dagent`), then
    /// `<prefix>/share/dagent/python`, `/usr/local/share/dagent/python`, `/usr/share/dagent/python`.
    public static func find(explicit: String?) throws -> String {
        func holdsPackage(_ dir: String) -> Bool {
            FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("dagent/_host.py"))
        }
        if let explicit {
            guard holdsPackage(explicit) else {
                throw ConfigError("python_path '\(explicit)' does not contain the dagent package (dagent/_host.py)")
            }
            return explicit
        }
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["DAGENT_PYTHON_PATH"], !env.isEmpty { candidates.append(env) }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        }
        let prefix = dir.deletingLastPathComponent()
        for _ in 0..<7 {
            candidates.append(dir.appendingPathComponent("python").path)
            dir = dir.deletingLastPathComponent()
        }
        candidates += [prefix.appendingPathComponent("share/dagent/python").path,
                       "/usr/local/share/dagent/python", "/usr/share/dagent/python"]
        if let found = candidates.first(where: holdsPackage) { return found }
        throw ConfigError("cannot find the dagent Python package (dagent/_host.py) in \(candidates.joined(separator: ", ")); "
            + "set plugins.python_path, --python-path or DAGENT_PYTHON_PATH")
    }
}
