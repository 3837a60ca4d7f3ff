import DAgentClusterSupport
import DAgentWire
import Foundation
import XCTest
import DAgentMsgq

/// Real `dagent run --plugins` agents with real CPython and test plugins.
final class PluginTests: XCTestCase {
    var c: Cluster!
    var port = 0
    var pluginDir: URL!
    /// The plugins shipped in the repository (echo, kv).
    let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("plugins").path

    override func setUpWithError() throws {
        c = try Cluster(name)
        port = Cluster.freePort()
        pluginDir = c.dir.appendingPathComponent("plugins")
        try FileManager.default.createDirectory(at: pluginDir, withIntermediateDirectories: true)
    }

    override func tearDown() { c.shutdown() }

    func plugin(_ name: String, _ code: String) throws {
        try code.write(to: pluginDir.appendingPathComponent("\(name).py"), atomically: false, encoding: .utf8)
    }

    /// Starts agent a1 with the shipped and the test plugins; waits until `loaded` are loaded.
    func startAgent(_ extra: [String] = [], loaded: [String] = ["echo"]) throws {
        try c.start("a1", ["run", "--name", "a1", "--role", "agent", "--listen", c.addr(port),
                           "--plugins", shipped, "--plugins", pluginDir.path, "--heartbeat-interval", "0.2"] + extra)
        c.waitFor("plugins \(loaded) loaded on a1") {
            Set(loaded).isSubset(of: Set(plugins().filter { $0.value.state == "loaded" }.keys))
        }
    }

    func plugins() -> [String: Dagent_PluginInfo] {
        guard let host = c.tree(at: port)?.pluginHost else { return [:] }
        return Dictionary(host.plugins.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    func request(_ type: UInt32, _ data: String, to: String = "a1", timeout: Double = 5) -> (status: Int32, out: String, err: String) {
        c.run(["request", "--via", c.addr(port), "--to", to, "--type", "\(type)", "--timeout", "\(timeout)", data])
    }

    func send(_ type: UInt32, _ data: String, to: String = "a1") -> (status: Int32, out: String, err: String) {
        c.run(["send", "--via", c.addr(port), "--to", to, "--type", "\(type)", data])
    }

    // MARK: -

    func testHandlerReceivesMessagesFromCLI() throws {
        try plugin("inbox", """
            import dagent
            seen = []

            @dagent.on(7)
            def note(msg):
                seen.append(f"{msg.src.split('-')[0]}:{msg.type}:{msg.text}")
                dagent.log.info("noted %r for %s", msg.text, msg.dst)

            @dagent.on(8)
            def dump(msg):
                return ",".join(seen)

            @dagent.on(9)
            def whoami(msg):
                return f"{dagent.name()} ready={dagent.ready()}"
            """)
        try startAgent(loaded: ["echo", "inbox"])
        XCTAssertEqual(request(9, "").out, "a1 ready=True\n")
        XCTAssertEqual(send(7, "first").status, 0)
        XCTAssertEqual(send(7, "second").status, 0)
        let r = request(8, "")
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "dagent:7:first,dagent:7:second\n")
        c.waitFor("4 messages counted for inbox") { plugins()["inbox"]?.handled == 4 }
        XCTAssertTrue(c.log("a1").contains("plugin=inbox [DAgentPython] noted 'first' for a1"), c.log("a1"))
    }

    func testRequestReplyThroughShippedPlugins() throws {
        try startAgent(loaded: ["echo", "kv"])
        let echo = request(1, "hello plugin")
        XCTAssertEqual(echo.status, 0, echo.err)
        XCTAssertEqual(echo.out, "hello plugin\n")
        XCTAssertTrue(request(2, "ping").out.hasPrefix("pong from a1: "))
        XCTAssertEqual(request(10, "incr visits").out, "1\n")
        XCTAssertEqual(send(11, "visits 5").status, 0)
        XCTAssertEqual(request(10, "get visits").out, "6\n")
        let missing = request(10, "get nothing")
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.err, "dagent: refused: no such key: nothing\n")
        let unhandled = request(55, "x")
        XCTAssertEqual(unhandled.status, 1)
        XCTAssertTrue(unhandled.err.contains("no handler for message type 55"), unhandled.err)
    }

    func testAsyncHandlerAwaitsRequestToAnotherNode() throws {
        try plugin("relay", """
            import dagent

            @dagent.on(20)
            async def relay(msg):
                answer = await dagent.arequest("ep", 1, msg.data + b"!", timeout=3)
                return b"ep said: " + answer

            @dagent.on(21)
            async def lost(msg):
                try:
                    await dagent.arequest("nobody-here", 1, b"", timeout=3)
                except dagent.NoRoute as e:
                    return f"NoRoute: {e.reason}"

            @dagent.on(22)
            def blocking(msg):
                return b"sync: " + dagent.request("ep", 1, msg.data, timeout=3)
            """)
        try startAgent(loaded: ["relay"])
        try c.start("ep", ["run", "--name", "ep", "--parent", c.addr(port), "--echo", "--heartbeat-interval", "0.2"])
        c.waitFor("ep registered") { c.names(at: port)?.contains("ep") == true }
        let r = request(20, "hi")
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "ep said: hi!\n")
        let lost = request(21, "")
        XCTAssertEqual(lost.status, 0, lost.err)
        XCTAssertTrue(lost.out.hasPrefix("NoRoute: no route to 'nobody-here'"), lost.out)
        XCTAssertEqual(request(22, "x").out, "sync: x\n")
    }

    func testRaisingHandlerKeepsAgentAliveAndIsCounted() throws {
        try plugin("flaky", """
            import dagent

            @dagent.on(30)
            def explode(msg):
                raise ValueError("cannot handle " + msg.text)
            """)
        try startAgent(loaded: ["echo", "flaky"])
        for i in 0..<3 { XCTAssertEqual(send(30, "m\(i)").status, 0) }
        let r = request(30, "req")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("handler for type 30 in plugin 'flaky' raised ValueError: cannot handle req"), r.err)
        c.waitFor("4 errors counted for flaky, type 30") {
            let p = plugins()["flaky"]
            return p?.errors == 4 && p?.errorsBy["30"] == 4
        }
        let json = c.run(["tree", "--via", c.addr(port), "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as! [String: Any]
        let host = obj["plugin_host"] as! [String: Any]
        let flaky = (host["plugins"] as! [[String: Any]]).first { $0["name"] as? String == "flaky" }!
        XCTAssertEqual(flaky["errors"] as? Int, 4)
        XCTAssertEqual((flaky["errors_by"] as? [String: Int])?["30"], 4)
        XCTAssertTrue(c.log("a1").contains("Traceback"), "the traceback is logged")
        XCTAssertTrue(c.log("a1").contains("ValueError: cannot handle m0"))
        XCTAssertEqual(request(1, "still alive").out, "still alive\n")
    }

    func testSyntaxErrorPluginIsSkippedOthersLoad() throws {
        try plugin("broken", "import dagent\n\ndef oops(:\n    pass\n")
        try plugin("fine", "import dagent\n\n@dagent.on(31)\ndef ok(msg):\n    return b'fine'\n")
        try startAgent(loaded: ["echo", "kv", "fine"])
        let broken = plugins()["broken"]
        XCTAssertEqual(broken?.state, "failed")
        XCTAssertTrue(broken?.error.contains("broken.py:3: SyntaxError") == true, broken?.error ?? "")
        XCTAssertTrue(c.log("a1").contains("plugin 'broken' skipped: import failed at \(pluginDir.path)/broken.py:3"), c.log("a1"))
        XCTAssertEqual(request(31, "").out, "fine\n")
        let text = c.run(["tree", "--via", c.addr(port)]).out
        XCTAssertTrue(text.contains("broken FAILED"), text)
    }

    func testReloadPicksUpChangedCodeWithoutDroppingLinks() throws {
        try plugin("ver", "import dagent\n\n@dagent.on(40)\ndef v(msg):\n    return b'v1'\n")
        try startAgent(loaded: ["ver"])
        try c.start("sink", ["recv", "--via", c.addr(port), "--name", "sink"])
        c.waitFor("sink registered") { c.names(at: port)?.contains("sink") == true }
        XCTAssertEqual(request(40, "").out, "v1\n")

        try plugin("ver", "import dagent\n\n@dagent.on(40)\ndef v(msg):\n    return b'v2'\n")
        let r = c.run(["reload", "--via", c.addr(port)])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("ver: reloaded"), r.out)
        XCTAssertTrue(r.out.contains("echo: unchanged"), r.out)
        XCTAssertEqual(request(40, "").out, "v2\n")

        try plugin("ver", "import dagent\n\n@dagent.on(40)\ndef v(msg):\n    return b'v3'\n")
        c.signal("a1", SIGHUP)
        c.waitFor("SIGHUP reload") { request(40, "").out == "v3\n" }
        XCTAssertEqual(plugins()["ver"]?.loads, 3)

        let named = c.run(["reload", "--via", c.addr(port), "echo"])
        XCTAssertEqual(named.out, "echo: reloaded\n", named.err)
        XCTAssertEqual(c.run(["reload", "--via", c.addr(port), "nope"]).status, 1)
        // the link to sink survived every reload
        XCTAssertEqual(send(1, "after reloads", to: "sink").status, 0)
        XCTAssertTrue(c.names(at: port)?.contains("sink") == true)
    }

    func testTimersFire() throws {
        try plugin("ticker", """
            import dagent
            ticks = 0
            fired = []

            def tick():
                global ticks
                ticks += 1

            def setup():
                dagent.every(0.05, tick)
                dagent.after(0.05, fired.append, "once")

            @dagent.on(41)
            def count(msg):
                return f"{ticks} {len(fired)}"
            """)
        try startAgent(loaded: ["ticker"])
        c.waitFor("ticker ran at least 5 times") {
            let parts = request(41, "").out.split(separator: " ")
            return parts.count == 2 && (Int(parts[0]) ?? 0) >= 5 && parts[1] == "1\n"
        }
        XCTAssertEqual(plugins()["ticker"]?.timers, 1)
    }

    func testStuckHandlerIsInterrupted() throws {
        try plugin("stuck", """
            import dagent

            @dagent.on(50)
            def spin(msg):
                while True:
                    pass

            @dagent.on(51)
            async def spin_async(msg):
                n = 0
                while True:
                    n += 1
            """)
        try startAgent(["--handler-budget", "0.5"], loaded: ["echo", "stuck"])
        let started = Date()
        let r = request(50, "", timeout: 20)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("ran longer than handler_budget=0.5s and was interrupted"), r.err)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        let a = request(51, "", timeout: 20)
        XCTAssertEqual(a.status, 1)
        XCTAssertTrue(a.err.contains("interrupted"), a.err)
        XCTAssertEqual(request(1, "alive").out, "alive\n")
        c.waitFor("interrupts counted") {
            let p = plugins()["stuck"]
            return p?.interrupts == 2 && (p?.overBudget ?? 0) >= 2
        }
        XCTAssertTrue(c.log("a1").contains("over handler_budget=0.5s; interrupting it"), c.log("a1"))
    }

    func testBadPluginConfigStopsOnlyThatPlugin() throws {
        let config = c.dir.appendingPathComponent("a1.yaml")
        try """
            name: a1
            role: agent
            listen: \(c.addr(port))
            plugins:
              dirs: [\(shipped)]
              config:
                echo: {prefix: "> "}
                kv: {max_keys: lots}
            """.write(to: config, atomically: true, encoding: .utf8)
        try c.start("a1", ["run", "--config", config.path])
        c.waitFor("echo loaded, kv stopped") { plugins()["echo"]?.state == "loaded" && plugins()["kv"]?.state == "stopped" }
        XCTAssertEqual(plugins()["kv"]?.error, "bad config: plugin 'kv': option 'max_keys' must be an integer (got str 'lots')")
        XCTAssertEqual(request(1, "hi").out, "> hi\n")
        XCTAssertTrue(request(10, "get x").err.contains("no handler for message type 10"))

        // fix the config and reload: the node re-reads its plugins section
        try String(contentsOf: config, encoding: .utf8).replacingOccurrences(of: "max_keys: lots", with: "max_keys: 5")
            .write(to: config, atomically: true, encoding: .utf8)
        let r = c.run(["reload", "--via", c.addr(port)])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("kv: reloaded"), r.out)
        XCTAssertEqual(request(10, "incr n").out, "1\n")
    }

    func testStartupErrorsAreClear() throws {
        let missing = c.run(["run", "--name", "x", "--listen", c.addr(port), "--plugins", "/nonexistent/plugins"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertEqual(missing.err, "dagent: plugin directory '/nonexistent/plugins' does not exist (--plugins / plugins.dirs)\n")
        // a node without plugins refuses `dagent reload` with a reason
        try c.start("plain", ["run", "--name", "plain", "--listen", c.addr(port)])
        c.waitFor("plain answers") { c.tree(at: port) != nil }
        let r = c.run(["reload", "--via", c.addr(port)])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("runs no Python plugins"), r.err)
    }
}
