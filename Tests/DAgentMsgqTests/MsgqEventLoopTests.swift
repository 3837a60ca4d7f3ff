import DAgentTestSupport
import DAgentWire
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import XCTest
@testable import DAgentMsgq
@testable import DAgentRouting

/// The message-queue event loop on a real System V queue (IPC_PRIVATE, removed
/// after each test): tasks and timers while it waits in msgrcv, messages
/// handled on its own thread, wakes when the queue is full, and shutdown.
final class MsgqEventLoopTests: XCTestCase {
    var queue: SysVQueue!
    var loop: MsgqEventLoop!
    let channel = 77

    override func setUpWithError() throws {
        let id = msgget(IPC_PRIVATE, IPC_CREAT | 0o600)
        guard id >= 0 else { throw SysVError("msgget", errno: errno, "IPC_PRIVATE") }
        queue = SysVQueue(id: id, key: IPC_PRIVATE)
        loop = MsgqEventLoop(label: "test loop")
    }

    override func tearDownWithError() throws {
        try loop?.syncShutdownGracefully()
        queue?.remove()
    }

    /// Attaches a source for `channel`; each batch of deliveries lands in `got` (on the loop).
    /// `batches` gets the size of each batch delivered.
    func attach(got: NIOLockedValueBox<[MsgqDelivery]>, failed: NIOLockedValueBox<[String]>? = nil,
                batches: NIOLockedValueBox<[Int]>? = nil) throws -> MsgqEventLoop.Source {
        var wake = MsgqWire.control(.wake, sender: UInt64(channel), incarnation: 1)
        wake.setType(channel)
        let source = MsgqEventLoop.Source(
            queue: queue, mtype: channel, wake: wake.bytes,
            intake: MsgqIntake(senderIsMtype: false, maxFrameBytes: 1 << 20),
            deliver: { [loop] batch in
                XCTAssertTrue(loop!.inEventLoop, "delivered on the loop's own thread")
                got.withLockedValue { $0 += batch }
                batches?.withLockedValue { $0.append(batch.count) }
            },
            failed: { error in failed?.withLockedValue { $0.append("\(error)") } })
        try loop.submit { self.loop.attach(source) }.wait()
        return source
    }

    /// One frame from the agent's channel, as a leaf receives it (`frames` of
    /// them packed into one queue message).
    func post(_ text: String, frames: Int = 1) {
        var writer = FrameWriter()
        var frame = Dagent_Frame()
        frame.treeRequest.requestID = UInt64(text.count)
        for _ in 0..<frames { try! writer.append(frame) }
        var messages: [MsgqOutMessage] = []
        MsgqPacker().pack(writer.take(allocator: ByteBufferAllocator()), sender: MsgqWire.agentChannel,
                          incarnation: 1, mtype: channel, into: &messages)
        for m in messages { XCTAssertEqual(queue.send(m.bytes, wait: false), 0) }
    }

    func testTasksAndTimersRunWithoutASource() throws {
        XCTAssertFalse(loop.inEventLoop)
        XCTAssertEqual(try loop.submit { self.loop.inEventLoop }.wait(), true)
        let start = NIODeadline.now()
        let fired = try loop.scheduleTask(in: .milliseconds(30)) { NIODeadline.now() }.futureResult.wait()
        XCTAssertGreaterThanOrEqual(fired - start, .milliseconds(30))
        let cancelled = loop.scheduleTask(in: .milliseconds(20)) { XCTFail("a cancelled task ran") }
        cancelled.cancel()
        XCTAssertThrowsError(try cancelled.futureResult.wait())
        usleep(50_000)
    }

    func testMessagesAreHandledOnTheLoopAndTasksWakeItFromMsgrcv() throws {
        let got = NIOLockedValueBox<[MsgqDelivery]>([])
        _ = try attach(got: got)
        post("one")
        waitFor("the first message") { got.withLockedValue { $0.count } == 1 }
        usleep(20_000)   // the loop is back in msgrcv
        // A task from another thread wakes it with a wake message (never delivered).
        XCTAssertEqual(try loop.submit { 42 }.wait(), 42)
        // A timer due while it waits in msgrcv wakes it too (the waker thread).
        let start = NIODeadline.now()
        _ = try loop.scheduleTask(in: .milliseconds(40)) {}.futureResult.wait()
        XCTAssertLessThan(NIODeadline.now() - start, .seconds(5))
        post("two")
        waitFor("the second message") { got.withLockedValue { $0.count } == 2 }
        XCTAssertEqual(queue.stat()?.messages, 0, "wakes were consumed")
    }

    /// A small queue message is delivered on its own: the loop does not drain
    /// the queue after it (no ENOMSG msgrcv per message on a round trip), and
    /// what was queued behind it comes with the next turns. A message of half
    /// msgmax or more (a sender's burst) drains what follows into its batch.
    func testDrainsTheQueueOnlyAfterALargeMessage() throws {
        XCTAssertFalse(MsgqEventLoop.drainsAfter(firstMessageBytes: 200, capacity: 8192))
        XCTAssertTrue(MsgqEventLoop.drainsAfter(firstMessageBytes: 4096, capacity: 8192))
        let got = NIOLockedValueBox<[MsgqDelivery]>([])
        let batches = NIOLockedValueBox<[Int]>([])
        _ = try attach(got: got, batches: batches)
        usleep(20_000)   // waiting in msgrcv
        // Hold the loop in a task while messages queue up behind it.
        func whileHeld(_ body: () -> Void) throws {
            let hold = DispatchSemaphore(value: 0)
            let held = loop.submit { hold.wait() }
            usleep(20_000)   // the task runs (its wake message was read)
            body()
            hold.signal()
            try held.wait()
        }
        try whileHeld { post("a"); post("bb"); post("ccc") }
        waitFor("three small messages") { got.withLockedValue { $0.count } == 3 }
        XCTAssertEqual(batches.withLockedValue { $0 }, [1, 1, 1], "one batch per small message")
        // 600 frames of about a dozen bytes pack into one message of over 4 KiB.
        try whileHeld { post("large", frames: 600); post("dd") }
        waitFor("the large message and the small one") { got.withLockedValue { $0.count } == 5 }
        XCTAssertEqual(batches.withLockedValue { $0 }, [1, 1, 1, 2], "the large message drains the small one into its batch")
        XCTAssertEqual(queue.stat()?.messages, 0)
    }

    func testAFullQueueStillWakesTheLoop() throws {
        let got = NIOLockedValueBox<[MsgqDelivery]>([])
        _ = try attach(got: got)
        usleep(20_000)
        // Fill the queue with messages for another channel: no wake message fits.
        var filler = ByteBuffer(bytes: Array(repeating: 0, count: MsgqWire.mtypeBytes) + Array(repeating: 0x61, count: 1024))
        filler.setInteger(channel + 1, at: 0, endianness: .host)
        while queue.send(filler, wait: false) == 0 {}
        let start = Date()
        XCTAssertEqual(try loop.submit { 7 }.wait(), 7, "woken by the signal")
        _ = try loop.scheduleTask(in: .milliseconds(30)) {}.futureResult.wait()
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertEqual(got.withLockedValue { $0.count }, 0)
    }

    func testDetachStopsReadingAndARemovedQueueFailsTheSource() throws {
        let got = NIOLockedValueBox<[MsgqDelivery]>([])
        let failed = NIOLockedValueBox<[String]>([])
        let source = try attach(got: got, failed: failed)
        try loop.submit { self.loop.detach(source) }.wait()
        post("unread")
        usleep(30_000)
        XCTAssertEqual(got.withLockedValue { $0.count }, 0, "a detached source is not read")
        XCTAssertEqual(queue.purge(mtype: channel), 1)
        _ = try attach(got: got, failed: failed)
        usleep(20_000)
        queue.remove()
        waitFor("the failure") { failed.withLockedValue { $0.count } == 1 }
        XCTAssertTrue(failed.withLockedValue { $0[0] }.contains("msgrcv"), failed.withLockedValue { $0[0] })
        // Still a working loop afterwards.
        XCTAssertEqual(try loop.submit { 1 }.wait(), 1)
        queue = nil
    }

    func testShutdownFailsPendingTimers() throws {
        _ = try attach(got: NIOLockedValueBox<[MsgqDelivery]>([]))
        usleep(20_000)   // waiting in msgrcv
        let later = loop.scheduleTask(in: .seconds(60)) { 1 }
        try loop.syncShutdownGracefully()
        XCTAssertThrowsError(try later.futureResult.wait()) { error in
            XCTAssertEqual(error as? EventLoopError, .shutdown)
        }
        try loop.syncShutdownGracefully()   // twice is fine
        // Late work on an ended loop runs inline instead of hanging.
        XCTAssertEqual(try loop.submit { self.loop.inEventLoop }.wait(), true)
        XCTAssertThrowsError(try loop.scheduleTask(in: .milliseconds(1)) { 1 }.futureResult.wait())
        loop = nil
    }
}
