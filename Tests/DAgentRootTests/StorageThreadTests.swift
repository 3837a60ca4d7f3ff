import DAgentNode
import DAgentRaft
import DAgentRaftStorage
import DAgentTestSupport
import DAgentWire
import Foundation
import XCTest
@testable import DAgentRoot

/// Blocks the WAL's fsync once armed, so that a test can hold a replica's storage write
/// for as long as it likes (deterministically: no timing involved).
final class FsyncGate: @unchecked Sendable {
    private let lock = NSLock()
    private var armed = false
    let entered = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)

    func arm() { lock.lock(); armed = true; lock.unlock() }

    /// The storage's crash hook: the first sync after `arm()` waits for `release`.
    func hook(_ step: PersistStep) {
        guard step == .beforeWALSync else { return }
        lock.lock()
        let block = armed
        armed = false
        lock.unlock()
        if block {
            entered.signal()
            release.wait()
        }
    }
}

/// The root's Raft fsync runs on a storage thread: routing through the root goes on while
/// a save is in progress, and the write it holds is answered only once it is durable.
final class StorageThreadTests: TempDirTestCase {
    func testRoutingFlowsWhileAnFsyncIsBlocked() throws {
        let gate = FsyncGate()
        var options = DiskStorageOptions()
        options.crashHook = { step in gate.hook(step) }
        let storage = try DiskStorage(directory: tmp + "/raft", bootstrapVoters: [1], options: options)
        let port = freePort()
        var rc = NodeConfig(name: "root")
        rc.listen = [.tcp(host: "127.0.0.1", port: port)]
        let root = try Node(config: rc)
        let replica = RootReplica(node: root, selfID: 1, streamID: 1,
                                  members: [GroupMember(nodeID: 1, endpoint: .tcp(host: "127.0.0.1", port: port), preferredLeader: true)],
                                  storage: storage)
        replica.attach()
        try root.start().wait()
        defer { try? root.shutdown() }
        try replica.start().wait()
        defer { replica.stop() }

        let a = try joinLeaf("a", at: port)
        defer { try? a.shutdown() }
        let b = try joinLeaf("b", at: port)
        defer { try? b.shutdown() }
        let received = NSLock()
        var got: [String] = []
        b.onMessage = { e in received.lock(); got.append(String(decoding: e.payload, as: UTF8.self)); received.unlock() }

        // A write whose fsync is held on the storage thread.
        gate.arm()
        let put = a.request(to: "@state", type: StateTypes.request,
                            payload: Data(#"{"op":"put","key":"k","value":"v"}"#.utf8), timeout: 60)
        XCTAssertEqual(gate.entered.wait(timeout: .now() + 20), .success, "the put reaches the storage thread's fsync")

        // Meanwhile the root routes: messages from a to b go through it.
        for i in 0..<50 { try a.send(to: "b", type: 7, payload: Data("m\(i)".utf8)).wait() }
        waitFor("50 messages routed through the root during the fsync", timeout: 20) {
            received.lock(); defer { received.unlock() }; return got.count == 50
        }
        received.lock()
        XCTAssertEqual(got, (0..<50).map { "m\($0)" })
        received.unlock()
        // The root also answers requests that need no fsync (its status) during the fsync.
        let status = try a.request(to: "@state", type: StateTypes.request, payload: Data(#"{"op":"status"}"#.utf8), timeout: 20).wait()
        XCTAssertTrue(String(decoding: status.payload, as: UTF8.self).contains("\"leader\""))

        // The write is not answered before its entry is durable.
        let answered = NSLock()
        var isAnswered = false
        put.whenComplete { _ in answered.lock(); isAnswered = true; answered.unlock() }
        try root.eventLoop.submit {}.wait()
        answered.lock()
        XCTAssertFalse(isAnswered, "a write is answered only after its fsync")
        answered.unlock()

        gate.release.signal()
        let reply = try put.wait()
        XCTAssertTrue(String(decoding: reply.payload, as: UTF8.self).contains("\"ok\":true"), String(decoding: reply.payload, as: UTF8.self))
        let figures = try root.eventLoop.submit { replica.figures }.wait()
        XCTAssertGreaterThan(figures.syncs, 0)
        XCTAssertGreaterThan(figures.walBytes, 0)
    }
}
