import DAgentNode
import DAgentRouting
import DAgentTLS
import DAgentTestSupport
import DAgentWire
import Foundation
import NIOCore
import XCTest

/// A stream through two relays (src → a1 → root → a2 → dst, real TCP links in
/// one process), plaintext and mutual TLS: the relays forward the large
/// batches as the slices they arrived in (`FrameWriter.forwardThreshold`), and
/// TLS cuts the stream into records wherever it likes. Every message arrives
/// once, in order, with its bytes.
final class RelayStreamTests: XCTestCase {
    func testStreamThroughTwoRelaysPlaintext() throws { try stream(tls: false) }

    func testStreamThroughTwoRelaysOverTLS() throws { try stream(tls: true) }

    func stream(tls: Bool) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("relaystream-\(getpid())-\(tls)").path
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        if tls {
            _ = try ClusterCA.create(in: dir)
            for (name, sans) in [("root", ["*.root"]), ("a1", ["*.a1"]), ("a2", ["*.a2"]), ("src", []), ("dst", [])] {
                _ = try ClusterCA.issue(caDir: dir, name: name, extraNames: sans, outDir: dir)
            }
        }
        var nodes: [Node] = []
        defer { for n in nodes.reversed() { try? n.shutdown() } }
        func start(_ name: String, listen: Int?, parent: Int?, agent: Bool) throws -> Node {
            var c = NodeConfig(name: name)
            if let listen { c.listen = [.tcp(host: "127.0.0.1", port: listen)] }
            if let parent { c.parents = [.tcp(host: "127.0.0.1", port: parent)] }
            if agent { c.role = .agent }
            if tls { c.tls = TLSFiles(cert: "\(dir)/\(name).crt", key: "\(dir)/\(name).key", ca: "\(dir)/ca.crt") }
            let n = try Node(config: c)
            nodes.append(n)
            try n.start().wait()
            if parent != nil { try n.ready().wait() }
            return n
        }
        let rootPort = freePort(), a1Port = freePort(), a2Port = freePort()
        _ = try start("root", listen: rootPort, parent: nil, agent: false)
        _ = try start("a1", listen: a1Port, parent: rootPort, agent: true)
        _ = try start("a2", listen: a2Port, parent: rootPort, agent: true)
        let dst = try start("dst", listen: nil, parent: a2Port, agent: false)
        let src = try start("src", listen: nil, parent: a1Port, agent: false)

        let streamType: UInt32 = 7
        let lock = NSLock()
        var got: [UInt32] = []
        var bad: [String] = []
        dst.onMessages = { batch in
            lock.lock(); defer { lock.unlock() }
            for m in batch where m.type == streamType {
                let seq = m.payload.getInteger(at: m.payload.readerIndex, endianness: .little, as: UInt32.self) ?? .max
                if Array(m.payload.readableBytesView.dropFirst(4)) != Self.body(seq, size: m.payload.readableBytes - 4) {
                    bad.append("message \(seq): \(m.payload.readableBytes) bytes, not its own")
                }
                if m.sendTimeNs != 0 { bad.append("message \(seq) carries send_time_ns \(m.sendTimeNs): a node stamps none") }
                got.append(seq)
            }
        }
        // The route is up once a confirmed send gets through.
        try waitFor("dst reachable from src", timeout: 20) {
            (try? src.sendConfirmed(to: "dst", type: 1, payload: Data("hello".utf8), timeout: 2).wait()) != nil
        }
        // Bursts of every size: one loop tick each, so a burst leaves src as one batch (up to
        // the batch limit) and reaches the relays whole or cut across reads and TLS records.
        let bursts = [1, 2, 700, 3, 40, 1, 300, 64, 5, 1000, 17]
        for (i, burst) in bursts.enumerated() {
            let size = [1024, 100, 3000][i % 3]
            let first = UInt32(bursts[..<i].reduce(0, +))
            try src.eventLoop.submit {
                for seq in first..<(first + UInt32(burst)) {
                    var payload = ByteBufferAllocator().buffer(capacity: 4 + size)
                    payload.writeInteger(seq, endianness: .little)
                    payload.writeBytes(Self.body(seq, size: size))
                    try src.sendOnLoop(to: "dst", type: streamType, payload: payload)
                }
            }.wait()
        }
        let total = bursts.reduce(0, +)
        waitFor("\(total) messages at dst", timeout: 30) { lock.lock(); defer { lock.unlock() }; return got.count >= total }
        lock.lock()
        defer { lock.unlock() }
        XCTAssertEqual(got, Array(0..<UInt32(total)), "each once, in order")
        XCTAssertEqual(bad, [])
    }

    static func body(_ seq: UInt32, size: Int) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: Int(seq) &* 131 &+ $0 &* 7) }
    }
}
