import NIOCore

/// The event loop's side of the send window (`SendWindow`): room taken by a
/// caller on another thread comes back once the link writes that carry its
/// bytes have completed, so the window bounds what waits in the loop's task
/// queue and in the links' buffers together.
extension Node {
    /// Bytes charged to the window per message on top of its payload (its
    /// header on the wire), so that empty messages are bounded too.
    public static let windowHeaderBytes = 32

    /// What a send or publish of `payloadBytes` takes of the window.
    public static func windowCharge(payloadBytes: Int) -> Int { payloadBytes + windowHeaderBytes }

    /// A message that took `n` bytes of the window has been handed to the core
    /// (appended to a link, delivered here, queued or failed): give the room back
    /// once the next flush has been written.
    public func releaseWindowAfterFlush(_ n: Int) {
        windowUnflushed += n
        scheduleFlush()
    }

    /// Flushes the dirty links; the window's bytes come back when all of these
    /// writes have completed (or failed: a link that goes down frees its room).
    func flushReleasingWindow() {
        let n = windowUnflushed
        windowUnflushed = 0
        var writes: [EventLoopFuture<Void>] = []
        for id in dirty {
            if let written = links[id]?.flush() { writes.append(written) }
        }
        if writes.isEmpty {
            sendWindow.release(n)
        } else {
            let window = sendWindow
            EventLoopFuture.andAllComplete(writes, on: eventLoop).whenComplete { _ in window.release(n) }
        }
    }

    /// Nothing was appended to a link (a local delivery, a failed send): give the room back now.
    func releaseWindowNow() {
        sendWindow.release(windowUnflushed)
        windowUnflushed = 0
    }
}
