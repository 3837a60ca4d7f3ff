import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// The write side of a TCP link as threads other than its event loop see it,
/// so that a message from such a thread can be written to the socket on the
/// caller's thread (`tryWriteDirect`) instead of waking the loop.
///
/// The loop's writes (`TCPLinkIO.write`) and a direct write both run under
/// `lock`, so neither can start inside the other: every frame reaches the
/// socket whole. A direct write is made only while the link is quiet: nothing
/// appended on the loop and not yet handed to the channel (`busy`), nothing
/// handed to the channel and not yet written (`unsent`), no tail of an earlier
/// direct write waiting (`remainder`). What the socket does not take at once is
/// kept as `remainder`, which the loop writes before anything else of its own
/// (`takeRemainder`); until then the link is not quiet and every send takes the
/// loop's path, so order is kept and backpressure works as before.
///
/// The socket is written through a duplicate of the channel's descriptor
/// (`dup`), closed under the lock when the channel closes: a direct write never
/// reaches a descriptor number the channel has closed and the process reused.
/// Only plaintext TCP links get one (TLS records are written by the channel).
public final class LinkWriteState: @unchecked Sendable {
    let lock = NIOLock()
    /// On the loop only: true while `TCPLinkIO.write` holds `lock` (a write's
    /// callbacks, run inside it, must not take it again).
    var loopHolds = false
    /// Under `lock`: the duplicate descriptor (-1: no direct writes).
    private var fd: Int32
    /// Under `lock`: the loop has bytes appended and not yet handed to the channel.
    var busy = false
    /// Bytes handed to the channel whose writes have not completed: changed on
    /// the loop under `lock` (so the loop may read it without).
    var unsent = 0
    /// Under `lock`: the sizes of the writes in flight, oldest first.
    var inFlight = CircularBuffer<Int>(initialCapacity: 4)
    /// Under `lock`: what a direct write left unwritten.
    private var remainder: ByteBuffer?
    /// Under `lock`: frames written directly (added to the link's `framesOut` in the tree report).
    private var directFrames: UInt64 = 0
    /// Frames written directly so far.
    var directFramesOut: UInt64 { onLoopLocked { directFrames } }   // on the loop
    /// The link's channel (its loop writes `remainder`).
    private let channel: Channel

    /// False when the link never had a descriptor for direct writes (TLS, or a node
    /// without `directWrites`): then only the loop touches this state, and takes no lock.
    let shared: Bool

    init(descriptor: Int32, channel: Channel) {
        fd = descriptor
        shared = descriptor >= 0
        self.channel = channel
    }

    /// On the loop: true if direct writes may be tried on this link at all.
    var allowsDirect: Bool { onLoopLocked { fd >= 0 } }

    /// On the loop: runs `body` under `lock`, taking it unless this loop holds
    /// it already (a write's callbacks can close the channel, append to the
    /// link or flush it again, all inside the write).
    @inline(__always)
    func onLoopLocked<T>(_ body: () -> T) -> T {
        if loopHolds || !shared { return body() }
        lock.lock()
        loopHolds = true
        defer {
            loopHolds = false
            lock.unlock()
        }
        return body()
    }

    /// Writes one or more whole frames on the caller's thread if the link is
    /// quiet. Returns false when nothing was written (the caller then takes
    /// the loop's path); true when the frames are committed: written, or
    /// partly written with the rest left to the loop.
    public func tryWriteDirect(_ frame: UnsafeRawBufferPointer) -> Bool {
        guard frame.count > 0, let base = frame.baseAddress else { return false }
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0, !busy, unsent == 0, remainder == nil else { return false }
        var done = 0
        while done < frame.count {
            let n = send(fd, base + done, frame.count - done, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if n > 0 {
                done += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                break   // full (EAGAIN) or failed: the loop writes the rest, and meets the error itself
            }
        }
        if done == 0 { return false }
        directFrames &+= 1
        if done < frame.count {
            var rest = ByteBufferAllocator().buffer(capacity: frame.count - done)
            rest.writeBytes(UnsafeRawBufferPointer(rebasing: frame[done...]))
            remainder = rest
            channel.eventLoop.execute { self.writeRemainder() }
        }
        return true
    }

    /// On the loop: writes a direct write's tail, unless a flush took it first.
    private func writeRemainder() {
        onLoopLocked {
            guard let rest = takeRemainder() else { return }
            unsent += rest.readableBytes
            inFlight.append(rest.readableBytes)
            channel.writeAndFlush(rest).whenComplete { _ in self.completed() }
        }
    }

    /// On the loop, under `lock`: the tail of a direct write, to be written first.
    func takeRemainder() -> ByteBuffer? {
        defer { remainder = nil }
        return remainder
    }

    /// On the loop: the loop appended to an empty buffer.
    func markBusy() {
        onLoopLocked { busy = true }
    }

    /// On the loop: a write handed to the channel completed.
    func completed() {
        onLoopLocked {
            guard !inFlight.isEmpty else { return }
            unsent -= inFlight.removeFirst()
        }
    }

    /// No more direct writes; closes the duplicate descriptor (idempotent). A
    /// tail still waiting is left for the loop's last write.
    func closeDirect() {
        onLoopLocked {
            if fd >= 0 { _ = Foundation.close(fd) }
            fd = -1
        }
    }

    /// A duplicate of the descriptor of `channel`'s socket, or -1. NIO does not
    /// hand out its descriptor, so the process's open sockets are matched on
    /// the channel's local and remote address (a connected TCP socket's pair
    /// is unique while it is open); the duplicate is checked again after `dup`,
    /// in case the number was closed and reused in between. On the channel's loop.
    static func duplicateDescriptor(of channel: Channel) -> Int32 {
        guard let local = channel.localAddress, let remote = channel.remoteAddress,
              let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return -1 }
        for name in names {
            guard let fd = Int32(name), matches(fd, local: local, remote: remote) else { continue }
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
            if copy < 0 { continue }
            if matches(copy, local: local, remote: remote) { return copy }
            _ = Foundation.close(copy)
        }
        return -1
    }

    private static func matches(_ fd: Int32, local: SocketAddress, remote: SocketAddress) -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK else { return false }
        var a = sockaddr_storage(), b = sockaddr_storage()
        var la = socklen_t(MemoryLayout<sockaddr_storage>.size), lb = la
        let ok = withUnsafeMutablePointer(to: &a) { pa in
            withUnsafeMutablePointer(to: &b) { pb in
                pa.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &la) } == 0
                    && pb.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &lb) } == 0
            }
        }
        return ok && same(a, local) && same(b, remote)
    }

    private static func same(_ s: sockaddr_storage, _ address: SocketAddress) -> Bool {
        var s = s
        switch address {
        case .v4(let v4):
            guard s.ss_family == sa_family_t(AF_INET) else { return false }
            let x = withUnsafeBytes(of: &s) { $0.load(as: sockaddr_in.self) }
            return x.sin_port == v4.address.sin_port && x.sin_addr.s_addr == v4.address.sin_addr.s_addr
        case .v6(let v6):
            guard s.ss_family == sa_family_t(AF_INET6) else { return false }
            let x = withUnsafeBytes(of: &s) { $0.load(as: sockaddr_in6.self) }
            var y = v6.address
            var xa = x.sin6_addr
            return x.sin6_port == y.sin6_port && memcmp(&xa, &y.sin6_addr, MemoryLayout<in6_addr>.size) == 0
        default:
            return false
        }
    }
}
