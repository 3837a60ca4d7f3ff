import DAgentNode
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The sends of `dagent_send` made on threads other than the node's event loop,
/// handed to the loop in batches. A send copies its payload into the outbox under
/// one lock; only the send that finds the outbox empty schedules a loop task, and
/// that task sends everything queued by the time it runs, in order, then gives the
/// send window's room back once those bytes are written. A stream of sends thus
/// costs the loop one task per batch, not a task, a closure and a `Data` per message.
///
/// Order is kept: sends from one thread leave in the order they were made, and
/// before anything that thread hands the loop afterwards (a request, a publish),
/// since a send joins a batch only once the batch's task is queued (else it
/// queues a task of its own); and
/// before its later direct writes, since the batch's hand-off is counted
/// (`DirectRoutes.beginHandoff`) before any send joins it.
final class SendOutbox: @unchecked Sendable {
    private struct Entry {
        var dst: String
        var type: UInt32
        var count: Int
        var charge: Int
    }

    private let node: Node
    private let logger: Logger
    private let lock = NIOLock()
    // Under `lock`: what callers queued since the last drain.
    private var entries: [Entry] = []
    private var bytes: ByteBuffer
    private var scheduled = false
    // Under `lock`: drain tasks scheduled whose `execute` has not returned yet.
    private var unqueued = 0
    // The loop's: the batch being sent (swapped with the above, so no buffer is allocated per batch).
    private var sending: [Entry] = []
    private var sendingBytes: ByteBuffer

    init(node: Node, logger: Logger) {
        self.node = node
        self.logger = logger
        bytes = ByteBufferAllocator().buffer(capacity: 16 * 1024)
        sendingBytes = ByteBufferAllocator().buffer(capacity: 16 * 1024)
    }

    /// Queues a send whose window room (`charge`) the caller has taken.
    func send(to dst: String, type: UInt32, payload: UnsafeRawBufferPointer, charge: Int) {
        let schedule: Bool = lock.withLock {
            entries.append(Entry(dst: dst, type: type, count: payload.count, charge: charge))
            bytes.writeBytes(payload)
            // Join the batch only once its drain task is in the loop's queue: then that task is ahead
            // of anything this thread hands the loop next (a request). While the thread that scheduled
            // it has not queued it yet (`unqueued`), this send queues a task of its own; the later of
            // the two finds the outbox empty.
            if scheduled && unqueued == 0 { return false }
            scheduled = true
            unqueued += 1
            // Counted before any send can join: no direct request or reply of a joiner overtakes
            // these sends (Node-direct.swift).
            node.direct.beginHandoff()
            return true
        }
        if schedule {
            node.eventLoop.execute { self.drain() }   // outside the lock: the woken loop does not find it held
            lock.withLock { unqueued -= 1 }
        }
    }

    /// On the loop: sends what was queued (failures are logged: the callers are not waiting).
    private func drain() {
        lock.withLock {
            swap(&entries, &sending)
            swap(&bytes, &sendingBytes)
            scheduled = false
        }
        var charge = 0
        sendingBytes.withUnsafeReadableBytes { all in
            var offset = 0
            for e in sending {
                let payload = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + e.count)])
                offset += e.count
                charge += e.charge
                do { try node.sendOnLoop(to: e.dst, type: e.type, payload: payload) } catch {
                    logger.warning("send to '\(e.dst)' (type \(e.type)) failed: \(error)")
                }
            }
        }
        sending.removeAll(keepingCapacity: sending.count <= 4096)
        if sendingBytes.capacity > 1 << 20 {
            sendingBytes = ByteBufferAllocator().buffer(capacity: 16 * 1024)   // a burst of large payloads: let it go
        } else {
            sendingBytes.clear()
        }
        node.releaseWindowAfterFlush(charge)
        node.direct.endHandoff()   // the batch is in its links' buffers (or failed)
    }
}
