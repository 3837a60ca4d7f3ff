import DAgentWire
import Foundation
import NIOCore
import NIOPosix
import XCTest
import DAgentNode
import DAgentRouting
import DAgentMsgq
import DAgentTestSupport

/// The one harness that starts real `dagent` processes on loopback for the Swift
/// integration tests (Tests/DAgentClusterSupport/README.md shows its use).
///
/// Each cluster owns a temporary directory (`dir`) for logs and data; a process
/// started as `key` logs stderr to `key.log` and stdout to `key.out` there, and
/// `shutdown()` kills what is left and removes the directory (kept when
/// `DAGENT_KEEP_TEST_LOGS` is set). Waiting is always for a condition with a
/// deadline (`waitFor`), never a fixed sleep; a timed-out wait fails the test and
/// prints every log.
public final class Cluster {
    /// This cluster's temporary directory.
    public let dir: URL
    /// The `dagent` executable under test (`DAGENT_BIN`, or the one built next to the tests).
    public let binary: String
    /// The running processes, by key.
    public private(set) var processes: [String: Process] = [:]
    /// An event loop for in-process queries (`tree(at:)`, `names(at:)`).
    public static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// A cluster for the test `name` (use the test's `name`, so that logs are easy to find).
    public init(_ name: String) throws {
        let safe = String(name.map { $0.isLetter || $0.isNumber ? $0 : "-" })
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("dagent-it-\(safe)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        binary = Cluster.findBinary()
    }

    /// `.build/<triple>/debug/dagent`, next to the test bundle.
    public static func findBinary() -> String {
        if let env = ProcessInfo.processInfo.environment["DAGENT_BIN"] { return env }
        // On Linux the test runner is `.build/<triple>/debug/<pkg>PackageTests.xctest`.
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<3 {
            url = url.deletingLastPathComponent()
            let candidate = url.appendingPathComponent("dagent").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "dagent"
    }

    /// A free loopback port (bound then released; DAgentTestSupport's `freePort()`).
    public static func freePort() -> Int { DAgentTestSupport.freePort() }

    /// `dagent-bench`, built next to `dagent`.
    public var benchBinary: String { (binary as NSString).deletingLastPathComponent + "/dagent-bench" }

    /// Starts a long-running `dagent ARGS` (or `executable ARGS`) as `key`; stderr goes to
    /// `key.log`, stdout to `key.out`. `env` adds to this process's environment.
    @discardableResult
    public func start(_ key: String, _ args: [String], executable: String? = nil, env: [String: String] = [:]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable ?? binary)
        p.arguments = args
        if !env.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(env) { _, new in new } }
        let log = dir.appendingPathComponent("\(key).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        p.standardError = handle
        let outFile = dir.appendingPathComponent("\(key).out")
        _ = FileManager.default.createFile(atPath: outFile.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: outFile)
        try p.run()
        processes[key] = p
        return p
    }

    /// `dagent run --name NAME ARGS` as `name`: the usual way to start a node.
    @discardableResult
    public func startNode(_ name: String, _ args: [String]) throws -> Process {
        try start(name, ["run", "--name", name] + args)
    }

    /// Runs a one-shot `dagent ARGS` (or `executable ARGS`) to completion; killed after `timeout`.
    public func run(_ args: [String], timeout: Double = 20, executable: String? = nil,
                    env: [String: String] = [:]) -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable ?? binary)
        p.arguments = args
        if !env.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(env) { _, new in new } }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { return (-1, "", "\(error)") }
        let deadline = Date().addingTimeInterval(timeout)
        final class Sink: @unchecked Sendable { var data = Data() }
        let outSink = Sink(), errSink = Sink()
        let reader = DispatchGroup()
        reader.enter()
        DispatchQueue.global().async { outSink.data = out.fileHandleForReading.readDataToEndOfFile(); reader.leave() }
        reader.enter()
        DispatchQueue.global().async { errSink.data = err.fileHandleForReading.readDataToEndOfFile(); reader.leave() }
        while p.isRunning && Date() < deadline { usleep(5_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        reader.wait()
        return (p.terminationStatus, String(decoding: outSink.data, as: UTF8.self), String(decoding: errSink.data, as: UTF8.self))
    }

    public func log(_ key: String) -> String {
        (try? String(contentsOf: dir.appendingPathComponent("\(key).log"), encoding: .utf8)) ?? ""
    }

    /// What the process printed on stdout.
    public func output(_ key: String) -> String {
        (try? String(contentsOf: dir.appendingPathComponent("\(key).out"), encoding: .utf8)) ?? ""
    }

    public func signal(_ key: String, _ sig: Int32) {
        if let p = processes[key] { kill(p.processIdentifier, sig) }
    }

    /// kill -9 and reap.
    public func kill9(_ key: String) {
        guard let p = processes.removeValue(forKey: key) else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    @discardableResult
    public func stop(_ key: String, timeout: Double = 10) -> Int32 {
        guard let p = processes.removeValue(forKey: key) else { return -1 }
        kill(p.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        return p.terminationStatus
    }

    public func waitForExit(_ key: String, timeout: Double = 10) -> Int32? {
        guard let p = processes[key] else { return nil }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { return nil }
        processes[key] = nil
        return p.terminationStatus
    }

    public func shutdown() {
        for (_, p) in processes where p.isRunning {
            kill(p.processIdentifier, SIGCONT)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        processes = [:]
        if ProcessInfo.processInfo.environment["DAGENT_KEEP_TEST_LOGS"] == nil {
            try? FileManager.default.removeItem(at: dir)
        }
    }

    /// The names the node at `port` sees in its subtree (nil if it does not answer).
    /// (`secret`: the cluster secret of a tree in secret mode.)
    public func names(at port: Int, secret: String = "") -> Set<String>? {
        tree(at: port, secret: secret).map { Set($0.names.map(\.name)) }
    }

    public func tree(at port: Int, secret: String = "") -> Dagent_TreeReply? {
        try? TreeQuery.fetch(.tcp(host: "127.0.0.1", port: port), timeout: 1, secret: secret, group: Cluster.group).wait()
    }

    /// Polls `condition` until it holds or `timeout` passes; a timeout fails the test with every log.
    public func waitFor(_ what: String, timeout: Double = 15, file: StaticString = #filePath, line: UInt = #line,
                 _ condition: () -> Bool) {
        DAgentTestSupport.waitFor(what, timeout: timeout, poll: 0.02, details: "logs in \(dir.path):\n\(allLogs())",
                                  file: file, line: line, condition)
    }

    public func allLogs() -> String {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return files.filter { $0.hasSuffix(".log") }.sorted().map { "--- \($0)\n" + String(log(String($0.dropLast(4))).suffix(3000)) }.joined(separator: "\n")
    }

    public func addr(_ port: Int) -> String { "tcp://127.0.0.1:\(port)" }

    /// Writes a DCF-style cluster JSON for a root group on `ports` (node ids 1...n, the first
    /// marked LEADER) and returns its path; start replica `id` with `startReplica`.
    public func writeRaftCluster(ports: [Int], file: String = "cluster.json") throws -> String {
        let members = ports.enumerated().map { i, port in
            "{\"stream_id\":1,\"node_id\":\(i + 1),\"ip\":\"127.0.0.1\",\"port\":\(port),\"role\":\"\(i == 0 ? "LEADER" : "FOLLOWER")\"}"
        }
        let path = dir.appendingPathComponent(file).path
        try Data("[\(members.joined(separator: ","))]".utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `dagent run --raft CLUSTER --node-id ID --data DIR/rID ARGS` as `rID`.
    @discardableResult
    public func startReplica(_ id: Int, cluster: String, _ args: [String] = []) throws -> Process {
        try start("r\(id)", ["run", "--raft", cluster, "--node-id", "\(id)", "--data", dir.appendingPathComponent("r\(id)").path] + args)
    }
}
