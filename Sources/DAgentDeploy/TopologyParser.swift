import Yams

/// Reads a topology file. Every problem is collected with its line and key
/// (an unknown key, a wrong type, a duplicate name, a dependency cycle, a
/// port used twice, a missing command) and thrown as one `TopologyError`.
/// Never traps on its input.
public enum TopologyParser {
    static let topKeys = ["name", "data", "secret", "log_level", "root", "agents", "defaults"]
    static let rootKeys = ["id", "name", "host", "listen"]
    static let agentKeys = ["host", "listen", "msgq", "http", "metrics", "plugins", "config", "processes"]
    /// The keys of an agent's `metrics:` section (the node's, see docs/metrics.md).
    static let metricsKeys = ["report_to", "report_interval", "report_timeout", "max_series", "max_families"]
    static let processKeys = ["run", "env", "cwd", "depends_on", "restart", "backoff", "min_uptime",
                              "crash_loop_after", "max_restarts", "stop_signal", "stop_timeout", "logs"]
    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Parses `text`. Relative paths (`data`, `msgq`, `plugins`, `cwd`) are
    /// taken from `baseDirectory` (the file's folder).
    public static func parse(yaml text: String, source: String = "", baseDirectory: String) throws -> Topology {
        var r = Reader(base: baseDirectory)
        let rootNode: Node?
        do {
            rootNode = try Yams.compose(yaml: text)
        } catch let YamlError.duplicatedKeysInMapping(duplicates, context) {
            let line = Reader.lineOfDuplicate(duplicates.first ?? "", after: context.mark.line, in: text)
            throw TopologyError(source: source, issues: [TopologyIssue(line: line, key: duplicates.first ?? "",
                                "duplicate key '\(duplicates.joined(separator: "', '"))' (each name may appear once in its mapping)")])
        } catch let error as YamlError {
            throw TopologyError(source: source, issues: [TopologyIssue(line: Reader.line(of: error), key: "", "not valid YAML: \(Reader.oneLine(error))")])
        } catch {
            throw TopologyError(source: source, issues: [TopologyIssue(line: 0, key: "", "not valid YAML: \(error)")])
        }
        guard let top = rootNode, case .mapping(let map) = top else {
            throw TopologyError(source: source, issues: [TopologyIssue(line: rootNode?.mark?.line ?? 1, key: "", "expected a mapping with name, data, root and agents")])
        }
        var t = Topology(name: "", data: "", secret: nil, logLevel: "info", roots: [], agents: [], source: source)
        r.checkKeys(map, allowed: topKeys, path: "")
        if let n = r.value(map, "name") { t.name = r.string(n, "name") ?? "" } else { r.fail(top, "name", "missing: the tree's name is required") }
        if !t.name.isEmpty && !Reader.isName(t.name) {
            r.fail(r.value(map, "name")!, "name", "'\(t.name)' is not a valid name (1-64 letters, digits, '-', '_', '.')")
        }
        if let n = r.value(map, "data") { t.data = r.path(r.string(n, "data") ?? "") } else { r.fail(top, "data", "missing: the folder for state and logs is required") }
        if let n = r.value(map, "secret") { t.secret = r.string(n, "secret") }
        if let n = r.value(map, "log_level"), let s = r.string(n, "log_level") {
            if logLevels.contains(s) { t.logLevel = s } else { r.fail(n, "log_level", "'\(s)' is not one of \(logLevels.joined(separator: ", "))") }
        }
        var defaults = ProcessSpec.defaults(name: "", agent: "", cwd: baseDirectory)
        if let n = r.value(map, "defaults") {
            if case .mapping(let m) = n {
                r.checkKeys(m, allowed: processKeys.filter { $0 != "run" }, path: "defaults")
                r.processOptions(m, into: &defaults, path: "defaults")
            } else { r.fail(n, "defaults", "expected a mapping of process options") }
        }
        if let n = r.value(map, "root") { t.roots = r.roots(n) } else { r.fail(top, "root", "missing: 1, 3 or 5 root replicas are required") }
        if let n = r.value(map, "agents") { t.agents = r.agents(n, defaults: defaults) } else { r.fail(top, "agents", "missing: at least one agent is required") }
        TopologyValidation.check(t, issues: &r.issues)
        if !r.issues.isEmpty {
            r.issues.sort { $0.line < $1.line }
            throw TopologyError(source: source, issues: r.issues)
        }
        return t
    }
}

/// Reading helpers over Yams nodes; problems go to `issues`.
struct Reader {
    var base: String
    var issues: [TopologyIssue] = []

    init(base: String) { self.base = base }

    mutating func fail(_ node: Node, _ key: String, _ message: String) {
        issues.append(TopologyIssue(line: node.mark?.line ?? 0, key: key, message))
    }

    static func line(of error: YamlError) -> Int {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return 0
        }
    }

    static func oneLine(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _): return problem
        default: return "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
        }
    }

    /// The line of the second `key:` at the indentation of its first occurrence.
    static func lineOfDuplicate(_ key: String, after first: Int, in text: String) -> Int {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard first >= 1, first <= lines.count else { return first }
        let firstLine = lines[first - 1]
        let indent = firstLine.prefix { $0 == " " }.count
        for i in first..<lines.count {
            let l = lines[i]
            let ind = l.prefix { $0 == " " }.count
            let rest = l.dropFirst(ind)
            if ind == indent, rest.hasPrefix(key + ":") || rest.hasPrefix("\"\(key)\":") { return i + 1 }
        }
        return first
    }

    static func isName(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 64 else { return false }
        return s.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || "-_.".unicodeScalars.contains($0) }
    }

    func path(_ p: String) -> String {
        if p.isEmpty || p.hasPrefix("/") { return p }
        let b = base.hasSuffix("/") ? String(base.dropLast()) : base
        return p == "." ? b : b + "/" + (p.hasPrefix("./") ? String(p.dropFirst(2)) : p)
    }

    func value(_ m: Node.Mapping, _ key: String) -> Node? {
        m.first { $0.key.string == key }?.value
    }

    mutating func checkKeys(_ m: Node.Mapping, allowed: [String], path: String) {
        for (k, _) in m {
            guard let name = k.string, allowed.contains(name) else {
                let shown = k.string ?? "?"
                fail(k, join(path, shown), "unknown key '\(shown)' (expected one of: \(allowed.joined(separator: ", ")))")
                continue
            }
        }
    }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    mutating func string(_ n: Node, _ key: String) -> String? {
        guard case .scalar(let s) = n else {
            fail(n, key, "expected a string")
            return nil
        }
        return s.string
    }

    mutating func number(_ n: Node, _ key: String, min: Double = 0) -> Double? {
        guard case .scalar = n, let d = n.float ?? n.int.map(Double.init), d.isFinite else {
            fail(n, key, "expected a number, got '\(n.string ?? "a collection")'")
            return nil
        }
        if d < min {
            fail(n, key, "must be at least \(min), got \(d)")
            return nil
        }
        return d
    }

    mutating func integer(_ n: Node, _ key: String, min: Int = 0, max: Int = Int.max) -> Int? {
        guard case .scalar = n, let i = n.int else {
            fail(n, key, "expected an integer, got '\(n.string ?? "a collection")'")
            return nil
        }
        if i < min || i > max {
            fail(n, key, "must be between \(min) and \(max), got \(i)")
            return nil
        }
        return i
    }

    mutating func stringList(_ n: Node, _ key: String) -> [String] {
        switch n {
        case .scalar(let s): return [s.string]
        case .sequence(let seq):
            return seq.compactMap { string($0, key) }
        default:
            fail(n, key, "expected a string or a list of strings")
            return []
        }
    }

    mutating func address(_ n: Node, _ key: String) -> TCPAddress? {
        guard let s = string(n, key) else { return nil }
        guard let a = TCPAddress.parse(s) else {
            fail(n, key, "'\(s)' is not tcp://HOST:PORT (port 1-65535)")
            return nil
        }
        return a
    }

    mutating func roots(_ n: Node) -> [RootSpec] {
        guard case .sequence(let seq) = n else {
            fail(n, "root", "expected a list of replicas: - {id: 1, listen: tcp://HOST:PORT}")
            return []
        }
        var out: [RootSpec] = []
        for (i, item) in seq.enumerated() {
            let path = "root[\(i)]"
            guard case .mapping(let m) = item else {
                fail(item, path, "expected {id: N, listen: tcp://HOST:PORT}")
                continue
            }
            checkKeys(m, allowed: TopologyParser.rootKeys, path: path)
            var spec = RootSpec(id: 0, name: "", host: nil, listen: TCPAddress(host: "", port: 0), line: item.mark?.line ?? 0)
            if let v = value(m, "id") {
                if let id = integer(v, path + ".id", min: 1) { spec.id = UInt64(id) }
            } else { fail(item, path + ".id", "missing: each replica needs a Raft node id (1, 2, ...)") }
            if let v = value(m, "listen") {
                if let a = address(v, path + ".listen") { spec.listen = a }
            } else { fail(item, path + ".listen", "missing: each replica needs listen: tcp://HOST:PORT") }
            if let v = value(m, "host") { spec.host = string(v, path + ".host") }
            spec.name = "r\(spec.id)"
            if let v = value(m, "name"), let s = string(v, path + ".name") {
                if Reader.isName(s) { spec.name = s } else { fail(v, path + ".name", "'\(s)' is not a valid name") }
            }
            out.append(spec)
        }
        if ![1, 3, 5].contains(out.count) {
            fail(n, "root", "\(out.count) replicas: the root group has 1, 3 or 5")
        }
        return out
    }

    mutating func agents(_ n: Node, defaults: ProcessSpec) -> [AgentSpec] {
        guard case .mapping(let m) = n else {
            fail(n, "agents", "expected a mapping of agent names to their settings")
            return []
        }
        var out: [AgentSpec] = []
        for (k, v) in m {
            guard let name = k.string, Reader.isName(name) else {
                fail(k, "agents", "'\(k.string ?? "?")' is not a valid agent name (1-64 letters, digits, '-', '_', '.')")
                continue
            }
            let path = "agents." + name
            var a = AgentSpec(name: name, host: nil, listen: nil, msgq: nil, plugins: [], pluginConfigJSON: "{}", processes: [], line: k.mark?.line ?? 0)
            if case .scalar(let s) = v, s.string.isEmpty || s.string == "~" || s.string == "null" {
                fail(k, path, "expected the agent's settings (listen, msgq, processes, ...)")
                continue
            }
            guard case .mapping(let am) = v else {
                fail(v, path, "expected a mapping (host, listen, msgq, plugins, config, processes)")
                continue
            }
            checkKeys(am, allowed: TopologyParser.agentKeys, path: path)
            if let x = value(am, "host") { a.host = string(x, path + ".host") }
            a.listenLine = a.line
            if let x = value(am, "listen") {
                a.listen = address(x, path + ".listen")
                a.listenLine = x.mark?.line ?? a.line
            }
            if let x = value(am, "msgq"), let s = string(x, path + ".msgq") {
                let p = s.hasPrefix("msgq://") ? String(s.dropFirst(7)) : s
                if p.isEmpty { fail(x, path + ".msgq", "expected a path") } else { a.msgq = self.path(p) }
            }
            if let x = value(am, "http") {
                a.http = address(x, path + ".http")
                a.httpLine = x.mark?.line ?? a.line
            }
            if let x = value(am, "metrics") {
                if case .mapping(let mm) = x {
                    checkKeys(mm, allowed: TopologyParser.metricsKeys, path: path + ".metrics")
                    for (mk, mv) in mm where mv.scalar == nil {
                        fail(mv, path + ".metrics." + (mk.string ?? "?"), "expected a single value")
                    }
                    a.metricsJSON = JSONText.render(x)
                } else {
                    fail(x, path + ".metrics", "expected a mapping (\(TopologyParser.metricsKeys.joined(separator: ", ")))")
                }
            }
            if let x = value(am, "plugins") { a.plugins = stringList(x, path + ".plugins").map { self.path($0) } }
            if let x = value(am, "config") {
                if case .mapping = x { a.pluginConfigJSON = JSONText.render(x) } else { fail(x, path + ".config", "expected a mapping of plugin names to their config sections") }
            }
            if value(am, "listen") == nil && value(am, "msgq") == nil {
                fail(k, path, "an agent needs listen: tcp://HOST:PORT or msgq: PATH (or both) for its processes to join")
            }
            if let x = value(am, "processes") {
                if case .mapping(let pm) = x {
                    for (pk, pv) in pm { if let p = process(pk, pv, agent: name, defaults: defaults) { a.processes.append(p) } }
                } else if !(x.scalar.map { $0.string.isEmpty || $0.string == "null" || $0.string == "~" } ?? false) {
                    fail(x, path + ".processes", "expected a mapping of process names to {run: ..., ...}")
                }
            }
            out.append(a)
        }
        if out.isEmpty && m.isEmpty { fail(n, "agents", "at least one agent is required") }
        return out
    }

    mutating func process(_ k: Node, _ v: Node, agent: String, defaults: ProcessSpec) -> ProcessSpec? {
        guard let name = k.string, Reader.isName(name) else {
            fail(k, "agents.\(agent).processes", "'\(k.string ?? "?")' is not a valid process name (1-64 letters, digits, '-', '_', '.')")
            return nil
        }
        let path = "agents.\(agent).processes.\(name)"
        var p = defaults
        p.name = name
        p.agent = agent
        p.line = k.mark?.line ?? 0
        guard case .mapping(let m) = v else {
            fail(k, path + ".run", "missing command: expected {run: \"COMMAND\", ...}")
            return nil
        }
        checkKeys(m, allowed: TopologyParser.processKeys, path: path)
        if let r = value(m, "run") {
            switch r {
            case .scalar(let s) where !s.string.allSatisfy({ $0 == " " || $0 == "\t" }): p.run = .shell(s.string)
            case .sequence(let seq) where !seq.isEmpty:
                let argv = seq.compactMap { string($0, path + ".run") }
                if argv.count == seq.count && !argv[0].isEmpty { p.run = .argv(argv) } else { fail(r, path + ".run", "the argv list needs a program name first") }
            default: fail(r, path + ".run", "missing command: run must be a command line or a non-empty argv list")
            }
        } else {
            fail(k, path + ".run", "missing command: each process needs run: \"COMMAND\"")
        }
        processOptions(m, into: &p, path: path)
        return p
    }

    mutating func processOptions(_ m: Node.Mapping, into p: inout ProcessSpec, path: String) {
        if let x = value(m, "env") {
            if case .mapping(let em) = x {
                for (ek, ev) in em {
                    guard let key = ek.string, !key.isEmpty, !key.contains("=") else {
                        fail(ek, path + ".env", "'\(ek.string ?? "?")' is not a variable name")
                        continue
                    }
                    if case .scalar(let s) = ev { p.env[key] = s.string } else { fail(ev, path + ".env." + key, "expected a string value") }
                }
            } else { fail(x, path + ".env", "expected a mapping of variable names to values") }
        }
        if let x = value(m, "cwd"), let s = string(x, path + ".cwd") { p.cwd = self.path(s) }
        if let x = value(m, "depends_on") { p.dependsOn = stringList(x, path + ".depends_on") }
        if let x = value(m, "restart"), let s = string(x, path + ".restart") {
            if let policy = RestartPolicy(rawValue: s == "never" ? "no" : s) { p.restart = policy } else {
                fail(x, path + ".restart", "'\(s)' is not one of always, on-failure, no")
            }
        }
        if let x = value(m, "backoff") {
            if case .mapping(let bm) = x {
                checkKeys(bm, allowed: ["initial", "max"], path: path + ".backoff")
                if let i = value(bm, "initial"), let d = number(i, path + ".backoff.initial", min: 0.001) { p.backoff.initial = d }
                if let i = value(bm, "max"), let d = number(i, path + ".backoff.max", min: 0.001) { p.backoff.max = d }
                if p.backoff.max < p.backoff.initial { fail(x, path + ".backoff", "max (\(p.backoff.max)) is below initial (\(p.backoff.initial))") }
            } else if let d = number(x, path + ".backoff", min: 0.001) {
                p.backoff = Backoff(initial: d, max: Swift.max(d, p.backoff.max))
            }
        }
        if let x = value(m, "min_uptime"), let d = number(x, path + ".min_uptime") { p.minUptime = d }
        if let x = value(m, "crash_loop_after"), let i = integer(x, path + ".crash_loop_after", min: 1, max: 1000) { p.crashLoopAfter = i }
        if let x = value(m, "max_restarts"), let i = integer(x, path + ".max_restarts") { p.maxRestarts = i }
        if let x = value(m, "stop_signal"), let s = string(x, path + ".stop_signal") {
            if let n = SignalName.number(s) { p.stopSignal = n } else { fail(x, path + ".stop_signal", "'\(s)' is not one of \(SignalName.table.map(\.0).joined(separator: ", "))") }
        }
        if let x = value(m, "stop_timeout"), let d = number(x, path + ".stop_timeout") { p.stopTimeout = d }
        if let x = value(m, "logs") {
            if case .mapping(let lm) = x {
                checkKeys(lm, allowed: ["max_bytes", "keep"], path: path + ".logs")
                if let i = value(lm, "max_bytes"), let n = integer(i, path + ".logs.max_bytes", min: 4096) { p.logMaxBytes = n }
                if let i = value(lm, "keep"), let n = integer(i, path + ".logs.keep", min: 0, max: 100) { p.logKeep = n }
            } else { fail(x, path + ".logs", "expected {max_bytes: N, keep: N}") }
        }
    }
}

/// Renders a YAML node as JSON text (for plugin config sections).
enum JSONText {
    static func render(_ n: Node) -> String {
        switch n {
        case .scalar(let s):
            if s.style == .plain {
                if let b = n.bool { return b ? "true" : "false" }
                if let i = n.int { return String(i) }
                if let d = n.float, d.isFinite { return String(d) }
                if n.null != nil { return "null" }
            }
            return quote(s.string)
        case .sequence(let seq): return "[" + seq.map(render).joined(separator: ",") + "]"
        case .mapping(let m): return "{" + m.map { quote($0.key.string ?? "") + ":" + render($0.value) }.joined(separator: ",") + "}"
        case .alias: return "null"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
