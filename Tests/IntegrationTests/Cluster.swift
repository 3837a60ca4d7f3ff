import DAgentWire
import Foundation
import NIOCore
import NIOPosix
import XCTest
import DAgentNode
import DAgentRouting
import DAgentMsgq

/// Real `dagent` processes on loopback for integration tests. Each test gets
/// its own temporary directory for logs and data; everything is killed in
/// `shutdown()`. Waiting is always for a condition with a deadline.
final class Cluster {
    let dir: URL
    let binary: String
    var processes: [String: Process] = [:]
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init(_ name: String) throws {
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("dagent-it-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        binary = Cluster.findBinary()
    }

    /// `.build/<triple>/debug/dagent`, next to the test bundle.
    static func findBinary() -> String {
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

    /// A free loopback port (bound then released).
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                _ = bind(fd, sp, len)
                _ = getsockname(fd, sp, &len)
            }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// `dagent-bench`, built next to `dagent`.
    var benchBinary: String { (binary as NSString).deletingLastPathComponent + "/dagent-bench" }

    /// Starts a long-running `dagent` process (or `executable`) named `key`; stderr goes to `key.log`.
    @discardableResult
    func start(_ key: String, _ args: [String], executable: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable ?? binary)
        p.arguments = args
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

    /// Runs a one-shot `dagent` command to completion.
    func run(_ args: [String], timeout: Double = 20) -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
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

    func log(_ key: String) -> String {
        (try? String(contentsOf: dir.appendingPathComponent("\(key).log"), encoding: .utf8)) ?? ""
    }

    /// What the process printed on stdout.
    func output(_ key: String) -> String {
        (try? String(contentsOf: dir.appendingPathComponent("\(key).out"), encoding: .utf8)) ?? ""
    }

    func signal(_ key: String, _ sig: Int32) {
        if let p = processes[key] { kill(p.processIdentifier, sig) }
    }

    /// kill -9 and reap.
    func kill9(_ key: String) {
        guard let p = processes.removeValue(forKey: key) else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    @discardableResult
    func stop(_ key: String, timeout: Double = 10) -> Int32 {
        guard let p = processes.removeValue(forKey: key) else { return -1 }
        kill(p.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        return p.terminationStatus
    }

    func waitForExit(_ key: String, timeout: Double = 10) -> Int32? {
        guard let p = processes[key] else { return nil }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { return nil }
        processes[key] = nil
        return p.terminationStatus
    }

    func shutdown() {
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
    func names(at port: Int) -> Set<String>? {
        guard let reply = try? TreeQuery.fetch(.tcp(host: "127.0.0.1", port: port), timeout: 1, group: Cluster.group).wait() else {
            return nil
        }
        return Set(reply.names.map(\.name))
    }

    func tree(at port: Int) -> Dagent_TreeReply? {
        try? TreeQuery.fetch(.tcp(host: "127.0.0.1", port: port), timeout: 1, group: Cluster.group).wait()
    }

    /// Polls `condition` until it holds or `timeout` passes.
    func waitFor(_ what: String, timeout: Double = 15, file: StaticString = #filePath, line: UInt = #line,
                 _ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return }
            usleep(20_000)
        }
        XCTFail("timed out after \(timeout)s waiting for: \(what)\nlogs in \(dir.path):\n\(allLogs())", file: file, line: line)
    }

    func allLogs() -> String {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return files.filter { $0.hasSuffix(".log") }.sorted().map { "--- \($0)\n" + String(log(String($0.dropLast(4))).suffix(3000)) }.joined(separator: "\n")
    }

    func addr(_ port: Int) -> String { "tcp://127.0.0.1:\(port)" }
}

/// A hand-driven TCP peer for bad-input tests: blocking socket, raw bytes.
final class RawPeer {
    let fd: Int32

    init(port: Int, receiveBuffer: Int? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer.map(Int32.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw ConfigError("connect to \(port) failed: errno \(errno)") }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    func write(_ frame: Dagent_Frame) -> Bool {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        try! FrameCodec.encode(frame, into: &buffer)
        return write(buffer.readBytes(length: buffer.readableBytes)!)
    }

    func register(_ name: String) -> Bool {
        var frame = Dagent_Frame()
        frame.register.name = name
        frame.register.protocolVersion = WireConstants.protocolVersion
        frame.register.role = .leaf
        return write(frame)
    }

    /// Reads frames until `match` accepts one or the connection ends / times out.
    func read(until match: (Dagent_Frame) -> Bool) -> Dagent_Frame? {
        var buffer = ByteBufferAllocator().buffer(capacity: 4096)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            while let frame = try? FrameCodec.decode(&buffer, maxFrameBytes: 1 << 24) {
                if match(frame) { return frame }
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            buffer.writeBytes(chunk[0..<n])
        }
    }

    /// True once the peer closed the connection (reads drain until EOF).
    func closedByPeer(timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK { return true }
        }
        return false
    }
}
