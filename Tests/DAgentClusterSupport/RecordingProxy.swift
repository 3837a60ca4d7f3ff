import Foundation
import Glibc


/// A TCP proxy on loopback that forwards every connection to `target` and
/// records the bytes in both directions, per connection (blocking sockets,
/// two threads per connection). Tests use it to check what crosses the wire
/// (never the cluster secret) and to replay what a node sent.
public final class RecordingProxy: @unchecked Sendable {
    public let port: Int
    let target: Int
    let listener: Int32
    let lock = NSLock()
    var upstream: [[UInt8]] = []     // per connection: client -> target
    var downstream: [[UInt8]] = []   // per connection: target -> client
    var fds: [Int32] = []
    var stopped = false

    public init(to target: Int) throws {
        self.target = target
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0, listen(listener, 16) == 0 else { throw RawPeerError("proxy bind/listen failed: errno \(errno)") }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) }
        }
        port = Int(UInt16(bigEndian: bound.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Bytes the clients sent, per connection, in order.
    public var sent: [[UInt8]] { lock.withLock { upstream } }
    /// Bytes the target answered, per connection.
    public var answered: [[UInt8]] { lock.withLock { downstream } }
    /// Every byte in both directions.
    public var allBytes: [UInt8] { lock.withLock { (upstream + downstream).flatMap { $0 } } }

    public func stop() {
        lock.withLock {
            stopped = true
            for fd in fds { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
            fds = []
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    deinit { stop() }

    func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            guard let server = try? RawPeer.connectFD(port: target) else { close(client); continue }
            let index: Int? = lock.withLock {
                if stopped { return nil }
                upstream.append([])
                downstream.append([])
                fds += [client, server]
                return upstream.count - 1
            }
            guard let index else { close(client); close(server); return }
            Thread.detachNewThread { [self] in pump(from: client, to: server, index: index, up: true) }
            Thread.detachNewThread { [self] in pump(from: server, to: client, index: index, up: false) }
        }
    }

    func pump(from: Int32, to: Int32, index: Int, up: Bool) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            lock.withLock {
                if up { upstream[index] += chunk[0..<n] } else { downstream[index] += chunk[0..<n] }
            }
            var off = 0
            while off < n {
                let w = chunk[off..<n].withUnsafeBytes { Glibc.send(to, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if w <= 0 { break }
                off += w
            }
        }
        shutdown(to, Int32(SHUT_WR))
    }
}

/// True if `needle` occurs in `hay`.
public func bytes(_ hay: [UInt8], contain needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, hay.count >= needle.count else { return false }
    let first = needle[0]
    var i = 0
    while i <= hay.count - needle.count {
        if hay[i] == first && Array(hay[i..<i + needle.count]) == needle { return true }
        i += 1
    }
    return false
}
