/// The checks that need the whole file: names unique across the tree,
/// dependencies that exist and form no cycle, no port or queue path used twice,
/// replica ids unique.
enum TopologyValidation {
    static func check(_ t: Topology, issues: inout [TopologyIssue]) {
        // Names: every root, agent and process registers one name in the tree.
        var seen: [String: (line: Int, what: String)] = [:]
        func claim(_ name: String, line: Int, what: String, key: String) {
            if let first = seen[name] {
                issues.append(TopologyIssue(line: line, key: key, "duplicate name '\(name)': already used by the \(first.what) on line \(first.line) (names are unique in the whole tree)"))
            } else {
                seen[name] = (line, what)
            }
        }
        var ids: [UInt64: Int] = [:]
        for r in t.roots {
            if r.id != 0, let first = ids[r.id] {
                issues.append(TopologyIssue(line: r.line, key: "root.id", "duplicate replica id \(r.id): already used on line \(first)"))
            } else { ids[r.id] = r.line }
            if r.id != 0 { claim(r.name, line: r.line, what: "root replica", key: "root.name") }
        }
        for a in t.agents { claim(a.name, line: a.line, what: "agent", key: "agents.\(a.name)") }
        for p in t.processes { claim(p.name, line: p.line, what: "process", key: "agents.\(p.agent).processes.\(p.name)") }

        // Ports and queue paths, per machine.
        var ports: [(addr: TCPAddress, host: String, line: Int, key: String)] = []
        func bind(_ a: TCPAddress?, host: String?, line: Int, key: String) {
            guard let a, a.port != 0 else { return }
            let machine = host ?? ""
            if let other = ports.first(where: { $0.host == machine && $0.addr.overlaps(a) }) {
                issues.append(TopologyIssue(line: line, key: key, "port used twice: \(a) is also the listen address on line \(other.line) (\(other.key))"))
            } else {
                ports.append((a, machine, line, key))
            }
        }
        for r in t.roots { bind(r.listen, host: r.host, line: r.line, key: "root.listen") }
        var queues: [String: Int] = [:]
        for a in t.agents {
            bind(a.listen, host: a.host, line: a.listenLine, key: "agents.\(a.name).listen")
            bind(a.http, host: a.host, line: a.httpLine, key: "agents.\(a.name).http")
            if let q = a.msgq {
                let k = (a.host ?? "") + ":" + q
                if let first = queues[k] {
                    issues.append(TopologyIssue(line: a.line, key: "agents.\(a.name).msgq", "msgq path '\(q)' used twice: also on line \(first)"))
                } else { queues[k] = a.line }
            }
        }

        // Dependencies: known names, no self-dependency, no cycle.
        let procs = Dictionary(t.processes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for p in t.processes {
            for d in p.dependsOn {
                if d == p.name {
                    issues.append(TopologyIssue(line: p.line, key: "agents.\(p.agent).processes.\(p.name).depends_on", "dependency cycle: \(p.name) -> \(p.name)"))
                } else if seen[d] == nil {
                    issues.append(TopologyIssue(line: p.line, key: "agents.\(p.agent).processes.\(p.name).depends_on", "unknown name '\(d)' (not a process, agent or root replica of this file)"))
                }
            }
        }
        if let cycle = DependencyOrder.findCycle(procs.mapValues(\.dependsOn)) {
            let first = procs[cycle[0]]!
            issues.append(TopologyIssue(line: first.line, key: "agents.\(first.agent).processes.\(first.name).depends_on",
                                        "dependency cycle: \(cycle.joined(separator: " -> ")) -> \(cycle[0])"))
        }
    }
}

/// Start and stop order from `depends_on`.
public enum DependencyOrder {
    /// A cycle among `deps` (name -> names it depends on; unknown names are
    /// ignored), as the list of its members starting from the smallest name, or nil.
    public static func findCycle(_ deps: [String: [String]]) -> [String]? {
        var color: [String: Int] = [:]   // 0 new, 1 on the stack, 2 done
        var stack: [String] = []
        var found: [String]?
        func visit(_ n: String) {
            if found != nil { return }
            color[n] = 1
            stack.append(n)
            for d in deps[n] ?? [] where deps[d] != nil && d != n {
                if color[d] == 1 {
                    let start = stack.lastIndex(of: d)!
                    found = Array(stack[start...])
                    return
                }
                if color[d, default: 0] == 0 { visit(d) }
                if found != nil { return }
            }
            stack.removeLast()
            color[n] = 2
        }
        for n in deps.keys.sorted() where color[n, default: 0] == 0 {
            visit(n)
            if found != nil { break }
        }
        guard let c = found else { return nil }
        let i = c.firstIndex(of: c.min()!)!
        return Array(c[i...] + c[..<i])
    }

    /// Names grouped in start levels: level 0 depends on nothing in `deps`,
    /// level k only on lower levels. Stop order is the reverse. Names caught
    /// in a cycle end up in a last level.
    public static func levels(_ deps: [String: [String]]) -> [[String]] {
        var level: [String: Int] = [:]
        var remaining = Set(deps.keys)
        var out: [[String]] = []
        while !remaining.isEmpty {
            let ready = remaining.filter { n in (deps[n] ?? []).allSatisfy { d in deps[d] == nil || d == n || (level[d] != nil) } }.sorted()
            if ready.isEmpty {
                out.append(remaining.sorted())
                break
            }
            for n in ready { level[n] = out.count }
            out.append(ready)
            remaining.subtract(ready)
        }
        return out
    }
}
