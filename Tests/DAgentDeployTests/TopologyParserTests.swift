import DAgentDeploy
import XCTest

final class TopologyParserTests: XCTestCase {
    static let example = """
    name: shop
    data: /var/lib/dagent/shop
    root:
      - {id: 1, listen: tcp://127.0.0.1:7100}
      - {id: 2, listen: tcp://127.0.0.1:7101}
      - {id: 3, listen: tcp://127.0.0.1:7102}
    agents:
      a1:
        host: web1
        listen: tcp://127.0.0.1:7201
        msgq: /run/dagent/a1.q
        plugins: [plugins]
        config: {echo: {prefix: "> "}}
        processes:
          echo1: {run: "dagent run --name echo1 --parent msgq:///run/dagent/a1.q --echo", restart: always}
          worker:
            run: "python3 worker.py"
            env: {DAGENT_VIA: "msgq:///run/dagent/a1.q"}
            depends_on: [echo1]
            restart: on-failure
            backoff: {initial: 0.5, max: 30}
      a2:
        listen: tcp://127.0.0.1:7202
        processes: {}
    """

    func parse(_ text: String) throws -> Topology {
        try TopologyParser.parse(yaml: text, source: "tree.yaml", baseDirectory: "/etc/dagent")
    }

    /// Asserts that `text` has exactly one issue, on `onLine` at `key` (when given), whose
    /// message passes `message`.
    func assertOneIssue(_ text: String, onLine: Int, key: String? = nil, _ message: (String) -> Bool = { _ in true },
                        file: StaticString = #filePath, line: UInt = #line) {
        let i = issues(text, file: file, line: line)
        guard i.count == 1 else { return XCTFail("expected one issue, got \(i)", file: file, line: line) }
        XCTAssertEqual(i[0].line, onLine, file: file, line: line)
        if let key { XCTAssertEqual(i[0].key, key, file: file, line: line) }
        XCTAssertTrue(message(i[0].message), i[0].message, file: file, line: line)
    }

    /// The issues of a file that must not parse.
    func issues(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [TopologyIssue] {
        do {
            _ = try parse(text)
            XCTFail("expected an error", file: file, line: line)
            return []
        } catch let e as TopologyError {
            return e.issues
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
            return []
        }
    }

    func testTheIssueExampleParses() throws {
        let t = try parse(Self.example)
        XCTAssertEqual(t.name, "shop")
        XCTAssertEqual(t.data, "/var/lib/dagent/shop")
        XCTAssertEqual(t.roots.map(\.name), ["r1", "r2", "r3"])
        XCTAssertEqual(t.roots[1].listen, TCPAddress(host: "127.0.0.1", port: 7101))
        XCTAssertEqual(t.agents.map(\.name), ["a1", "a2"])
        let a1 = t.agents[0]
        XCTAssertEqual(a1.host, "web1")
        XCTAssertEqual(a1.msgq, "/run/dagent/a1.q")
        XCTAssertEqual(a1.plugins, ["/etc/dagent/plugins"])
        XCTAssertEqual(a1.pluginConfigJSON, #"{"echo":{"prefix":"> "}}"#)
        XCTAssertEqual(a1.childAddress, "msgq:///run/dagent/a1.q")
        let worker = try XCTUnwrap(t.process(named: "worker"))
        XCTAssertEqual(worker.agent, "a1")
        XCTAssertEqual(worker.dependsOn, ["echo1"])
        XCTAssertEqual(worker.restart, .onFailure)
        XCTAssertEqual(worker.backoff, Backoff(initial: 0.5, max: 30))
        XCTAssertEqual(worker.env, ["DAGENT_VIA": "msgq:///run/dagent/a1.q"])
        XCTAssertEqual(worker.cwd, "/etc/dagent")
        XCTAssertEqual(worker.line, 16)
        XCTAssertEqual(t.process(named: "echo1")?.restart, .always)
        XCTAssertEqual(t.agents[1].processes, [])
    }

    func testDuplicateNameAcrossAgentsNamesBothLines() {
        let text = Self.example.replacingOccurrences(of: "processes: {}", with: "processes:\n      echo1: {run: \"sleep 1\"}")
        assertOneIssue(text, onLine: 25, key: "agents.a2.processes.echo1", { $0.contains("duplicate name 'echo1'") && $0.contains("line 15") })
    }

    func testDuplicateKeyInOneMappingNamesTheSecondLine() {
        let text = Self.example.replacingOccurrences(of: "  a2:\n", with: "  a1:\n")
        assertOneIssue(text, onLine: 22, { $0.contains("duplicate key 'a1'") })
    }

    func testAProcessNamedLikeAnAgentIsADuplicate() {
        let text = Self.example.replacingOccurrences(of: "processes: {}", with: "processes:\n      a1: {run: \"sleep 1\"}")
        XCTAssertTrue(issues(text)[0].message.contains("duplicate name 'a1': already used by the agent on line 8"))
    }

    func testDependencyCycle() {
        let text = Self.example.replacingOccurrences(of: "restart: always}", with: "restart: always, depends_on: [worker]}")
        assertOneIssue(text, onLine: 15, key: "agents.a1.processes.echo1.depends_on", { $0 == "dependency cycle: echo1 -> worker -> echo1" })
    }

    func testSelfDependencyAndUnknownDependency() {
        let text = Self.example.replacingOccurrences(of: "depends_on: [echo1]", with: "depends_on: [worker, echo2]")
        let messages = issues(text).map(\.message)
        XCTAssertTrue(messages.contains("dependency cycle: worker -> worker"), "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("unknown name 'echo2'") }, "\(messages)")
    }

    func testUnknownKeyNamesLineAndKey() {
        let text = Self.example.replacingOccurrences(of: "restart: on-failure", with: "restrat: on-failure")
        assertOneIssue(text, onLine: 20, key: "agents.a1.processes.worker.restrat", { $0.hasPrefix("unknown key 'restrat' (expected one of: run, env,") })
        XCTAssertEqual(TopologyError(source: "tree.yaml", issues: issues(text)).description.components(separatedBy: ": ")[0], "tree.yaml:20")
    }

    func testUnknownTopLevelAndAgentKeys() {
        let text = "nmae: x\n" + Self.example.replacingOccurrences(of: "    host: web1", with: "    hots: web1")
        let keys = issues(text).map(\.key)
        XCTAssertEqual(keys, ["nmae", "agents.a1.hots"])
    }

    func testPortUsedTwice() {
        let text = Self.example.replacingOccurrences(of: "listen: tcp://127.0.0.1:7202", with: "listen: tcp://0.0.0.0:7101")
        assertOneIssue(text, onLine: 23, key: "agents.a2.listen", { $0.contains("port used twice: tcp://0.0.0.0:7101") && $0.contains("line 5") })
    }

    func testSamePortOnAnotherHostIsFine() throws {
        let text = Self.example.replacingOccurrences(of: "listen: tcp://127.0.0.1:7202", with: "host: web2\n    listen: tcp://127.0.0.1:7201")
        XCTAssertEqual(try parse(text).agents[1].host, "web2")
    }

    func testMissingCommand() {
        let text = Self.example.replacingOccurrences(of: "run: \"python3 worker.py\"\n        ", with: "")
        assertOneIssue(text, onLine: 16, key: "agents.a1.processes.worker.run", { $0.hasPrefix("missing command") })
        XCTAssertEqual(issues(Self.example.replacingOccurrences(of: "run: \"dagent run --name echo1 --parent msgq:///run/dagent/a1.q --echo\"", with: "run: \"\""))[0].line, 15)
        XCTAssertEqual(issues(Self.example.replacingOccurrences(of: "{run: \"dagent run --name echo1 --parent msgq:///run/dagent/a1.q --echo\", restart: always}", with: "~"))[0].key, "agents.a1.processes.echo1.run")
    }

    func testWrongTypesAndValues() {
        let cases: [(String, String, String)] = [
            ("backoff: {initial: 0.5, max: 30}", "backoff: {initial: soon, max: 30}", "agents.a1.processes.worker.backoff.initial"),
            ("restart: on-failure", "restart: sometimes", "agents.a1.processes.worker.restart"),
            ("listen: tcp://127.0.0.1:7202", "listen: 127.0.0.1:7202", "agents.a2.listen"),
            ("{id: 2, listen", "{id: two, listen", "root[1].id"),
            ("env: {DAGENT_VIA: \"msgq:///run/dagent/a1.q\"}", "env: [a, b]", "agents.a1.processes.worker.env"),
            ("backoff: {initial: 0.5, max: 30}", "backoff: {initial: 5, max: 1}", "agents.a1.processes.worker.backoff"),
        ]
        for (from, to, key) in cases {
            let i = issues(Self.example.replacingOccurrences(of: from, with: to))
            XCTAssertEqual(i.map(\.key), [key], "\(to): \(i)")
            XCTAssertGreaterThan(i.first?.line ?? 0, 0)
        }
    }

    func testRootGroupSize() {
        let text = Self.example.replacingOccurrences(of: "  - {id: 3, listen: tcp://127.0.0.1:7102}\n", with: "")
        XCTAssertTrue(issues(text)[0].message.contains("2 replicas: the root group has 1, 3 or 5"))
    }

    func testGarbageNeverTraps() {
        let inputs = ["", "[", "- a\n- b", "name: [", "name: x\ndata: d\nroot: 5\nagents: 3", "\u{0}\u{1}", "a: &x [*x]",
                      "name: x\ndata: d\nroot: [{id: 1, listen: tcp://h:0}]\nagents: {a: {listen: tcp://h:1, processes: {p: {run: [\"\"]}}}}",
                      "name: x\ndata: d\nroot: [{id: 1, listen: tcp://h:99999}]\nagents: {a: ~}",
                      String(repeating: "[", count: 5000)]
        for text in inputs {
            XCTAssertThrowsError(try parse(text), "accepted \(text.prefix(40).debugDescription)")
        }
        // Random mutations of the example.
        var rng = SystemRandomNumberGenerator()
        let base = Array(Self.example.utf8)
        for _ in 0..<300 {
            var b = base
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let i = Int.random(in: 0..<b.count, using: &rng)
                b[i] = [UInt8(ascii: ":"), UInt8(ascii: "{"), UInt8(ascii: "-"), UInt8(ascii: " "), UInt8(ascii: "\n"), 0x41].randomElement(using: &rng)!
            }
            _ = try? parse(String(decoding: b, as: UTF8.self))
        }
    }

    func testDefaultsApplyToEveryProcess() throws {
        let text = Self.example.replacingOccurrences(of: "agents:\n", with: "defaults: {restart: no, min_uptime: 2, logs: {max_bytes: 5000, keep: 1}}\nagents:\n")
        let t = try parse(text)
        XCTAssertEqual(t.process(named: "echo1")?.restart, .always)   // its own setting wins
        XCTAssertEqual(t.process(named: "worker")?.minUptime, 2)
        XCTAssertEqual(t.process(named: "worker")?.logMaxBytes, 5000)
    }

    func testDependencyLevels() {
        XCTAssertEqual(DependencyOrder.levels(["a": [], "b": ["a"], "c": ["b", "a"], "d": ["x"]]), [["a", "d"], ["b"], ["c"]])
        XCTAssertEqual(DependencyOrder.findCycle(["a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]]), ["a", "b", "c"])
        XCTAssertNil(DependencyOrder.findCycle(["a": ["b"], "b": []]))
    }

    func testShellCommandsAreExecdWhenPlain() {
        XCTAssertEqual(Command.shell("dagent run --name x").argv, ["/bin/sh", "-c", "exec dagent run --name x"])
        XCTAssertEqual(Command.shell("a; b").argv, ["/bin/sh", "-c", "a; b"])
        XCTAssertEqual(Command.shell("X=1 prog").argv, ["/bin/sh", "-c", "X=1 prog"])
        XCTAssertEqual(Command.argv(["prog", "a b"]).argv, ["prog", "a b"])
    }

    func testFingerprintIgnoresPolicies() {
        var a = ProcessSpec.defaults(name: "p", agent: "a1", cwd: "/")
        a.run = .shell("sleep 5")
        var b = a
        b.restart = .never
        b.backoff = Backoff(initial: 1, max: 2)
        XCTAssertEqual(a.fingerprint, b.fingerprint)
        b.env["X"] = "1"
        XCTAssertNotEqual(a.fingerprint, b.fingerprint)
    }
}
