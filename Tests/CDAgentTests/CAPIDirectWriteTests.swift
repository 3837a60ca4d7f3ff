import CDAgent
@testable import CDAgentCore
import DAgentTestSupport
import Foundation
import XCTest

/// Requests and replies written on the caller's thread straight to a plaintext TCP
/// link's socket (`Node-direct.swift`), through the C API as a program calls it: two
/// nodes in this process over loopback, several threads on one node at once, sends
/// (the loop's path) mixed in. The receiving node's frame parser would cut the link
/// off on a torn or interleaved frame; the server checks that each thread's messages
/// arrive complete and in the order that thread made them.
final class CAPIDirectWriteTests: XCTestCase {
    /// What node "srv" checks: type 5 (one-way) and 6 (request, echoed) carry [thread, seq
    /// (4 bytes LE), filler...]; each thread's seqs must arrive 0, 1, 2, ... Type 7 answers
    /// "count problems". Used on the server's thread only.
    final class OrderCheck: @unchecked Sendable {
        private var next: [UInt8: UInt32] = [:]
        private var count = 0
        private var problems: [String] = []

        private func check(_ item: dagent_item) {
            guard item.len >= 5, let data = item.data else {
                problems.append("a \(item.len)-byte message")
                return
            }
            let b = UnsafeRawBufferPointer(start: data, count: item.len)
            let thread = b[0]
            let seq = UInt32(b[1]) | UInt32(b[2]) << 8 | UInt32(b[3]) << 16 | UInt32(b[4]) << 24
            let want = next[thread, default: 0]
            if seq != want { problems.append("thread \(thread): seq \(seq) after \(want) expected") }
            next[thread] = seq + 1
            for i in 5..<item.len where b[i] != CAPIDirectWriteTests.filler(seq, i) {
                problems.append("thread \(thread) seq \(seq): byte \(i) corrupt")
                break
            }
            count += 1
        }

        func handle(_ node: OpaquePointer, _ item: dagent_item) {
            switch item.type {
            case 5:
                check(item)
            case 6:
                check(item)
                _ = dagent_respond(node, item.src, item.type, item.cookie, 1, item.data, item.len)
            case 7:
                let text = "\(count) \(problems.count) \(problems.prefix(3).joined(separator: "; "))"
                _ = dagent_respond(node, item.src, item.type, item.cookie, 1, text, text.utf8.count)
            default:
                break
            }
        }
    }

    static func filler(_ seq: UInt32, _ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: Int(seq) &* 31 &+ i &* 7) }

    static func message(thread: UInt8, seq: UInt32, size: Int) -> [UInt8] {
        var m = [UInt8](repeating: 0, count: Swift.max(5, size))
        m[0] = thread
        for k in 0..<4 { m[1 + k] = UInt8(truncatingIfNeeded: seq >> (8 * UInt32(k))) }
        for i in 5..<m.count { m[i] = filler(seq, i) }
        return m
    }

    var server: CAPIServer!
    var client: OpaquePointer!

    override func setUpWithError() throws {
        let port = freePort()
        let check = OrderCheck()
        server = try CAPIServer(port: port, handle: check.handle)
        client = CAPIServer.connectClient(port: port)
    }

    override func tearDown() {
        if let client { dagent_destroy(client) }
        server?.stop()
    }

    static func handle(_ p: OpaquePointer) -> Handle { Unmanaged<Handle>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue() }

    /// `threads` threads, each making `perThread` calls: a send when `isSend(i)`, else a
    /// request whose echo must come back byte for byte. Returns the failures seen.
    func run(threads: Int, perThread: Int, size: @escaping @Sendable (Int) -> Int, isSend: @escaping @Sendable (Int) -> Bool) -> [String] {
        let lock = NSLock()
        var failures: [String] = []
        let group = DispatchGroup()
        let client = self.client!
        for t in 0..<threads {
            group.enter()
            Thread {
                defer { group.leave() }
                for i in 0..<perThread {
                    let m = Self.message(thread: UInt8(t), seq: UInt32(i), size: size(i))
                    if isSend(i) {
                        let rc = m.withUnsafeBytes { dagent_send(client, "srv", 5, $0.baseAddress, $0.count) }
                        if rc != 0 { lock.withLock { failures.append("send \(t)/\(i): \(rc) \(String(cString: dagent_last_error()))") } }
                        continue
                    }
                    var reply: UnsafeMutableRawPointer?
                    var n = -1
                    let rc = m.withUnsafeBytes { dagent_request(client, "srv", 6, $0.baseAddress, $0.count, 20, &reply, &n) }
                    if rc != 0 {
                        lock.withLock { failures.append("request \(t)/\(i): \(rc) \(String(cString: dagent_last_error()))") }
                    } else if n != m.count || (n > 0 && memcmp(reply!, m, n) != 0) {
                        lock.withLock { failures.append("request \(t)/\(i): reply of \(n) bytes differs") }
                    }
                    dagent_free(reply)
                }
            }.start()
        }
        group.wait()
        return failures
    }

    /// The server's count of checked messages and its problems ("count problems first...").
    func serverReport() -> String {
        var reply: UnsafeMutableRawPointer?
        var n = 0
        XCTAssertEqual(dagent_request(client, "srv", 7, nil, 0, 10, &reply, &n), 0, String(cString: dagent_last_error()))
        defer { dagent_free(reply) }
        return String(decoding: UnsafeRawBufferPointer(start: reply, count: n), as: UTF8.self)
    }

    func testThreadsRequestingAtOnceOverOneLinkKeepEveryFrameWholeAndEachThreadsOrder() {
        let threads = 4, perThread = 400
        let failures = run(threads: threads, perThread: perThread, size: { 5 + ($0 * 37) % 3000 }, isSend: { $0 % 5 == 4 })
        XCTAssertEqual(failures, [])
        XCTAssertEqual(serverReport(), "\(threads * perThread) 0 ", "every message arrived once, whole, in its thread's order")
        XCTAssertGreaterThan(Self.handle(client).node.direct.written, 0, "some requests went straight to the socket")
        XCTAssertGreaterThan(Self.handle(server.node).node.direct.written, 0, "some replies went straight to the socket")
    }

    func testASendThatJoinsAnotherThreadsBatchIsNotOvertakenByTheSendersNextRequest() {
        // Each thread alternates a send (through the outbox, often joining a batch another thread
        // scheduled) and a request (straight to the socket when nothing is handed off): the request
        // must never reach the server before the send made just before it on the same thread.
        let threads = 4, perThread = 600
        let failures = run(threads: threads, perThread: perThread, size: { _ in 16 }, isSend: { $0 % 2 == 0 })
        XCTAssertEqual(failures, [])
        XCTAssertEqual(serverReport(), "\(threads * perThread) 0 ", "each thread's sends and requests arrived in its order")
    }

    func testLargeRequestsAndRepliesThatTheSocketTakesInPartsArriveWhole() {
        // 1 MB messages (max_message_bytes is 1 MiB) do not fit a loopback socket's buffer at once: the rest of a
        // direct write goes to the loop, and nothing may pass it meanwhile.
        let threads = 3, perThread = 24
        let failures = run(threads: threads, perThread: perThread, size: { $0 % 3 == 0 ? 1_000_000 : 5 + $0 * 11 }, isSend: { $0 % 4 == 3 })
        XCTAssertEqual(failures, [])
        XCTAssertEqual(serverReport(), "\(threads * perThread) 0 ")
    }

    func testOnceARouteIsLearnedEachRequestAndReplyGoesStraightToTheSocket() {
        XCTAssertTrue(Self.handle(client).node.config.directWrites, "on for the C API's nodes unless DAGENT_DIRECT_WRITES=0")
        XCTAssertEqual(run(threads: 1, perThread: 50, size: { _ in 64 }, isSend: { _ in false }), [])
        // The first request and the first reply take the loop's path and teach it the route.
        XCTAssertGreaterThanOrEqual(Self.handle(client).node.direct.written, 49)
        XCTAssertGreaterThanOrEqual(Self.handle(server.node).node.direct.written, 49)
        XCTAssertEqual(serverReport(), "50 0 ")
        // The counters (tree report, /metrics) include what went straight to the socket.
        for (name, node) in [("client", Self.handle(client).node), ("server", Self.handle(server.node).node)] {
            let tree = try! node.treeSnapshot().wait()
            XCTAssertGreaterThanOrEqual(tree.messagesRouted, 50, "\(name): messages routed")
            XCTAssertGreaterThanOrEqual(tree.links.map(\.framesOut).reduce(0, +), 50, "\(name): frames out on its links")
        }
    }
}
