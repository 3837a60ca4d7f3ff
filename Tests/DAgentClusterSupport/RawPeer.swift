import DAgentWire
import Foundation
import NIOCore
import DAgentRouting

/// A hand-driven TCP peer for bad-input tests: blocking socket, raw bytes.
public final class RawPeer {
    public let fd: Int32

    /// A connected socket to 127.0.0.1:`port` (blocking).
    static func connectFD(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw RawPeerError("connect to \(port) failed: errno \(errno)") }
        return fd
    }

    /// Wraps an accepted socket (a fake server's side of a connection).
    public init(accepted fd: Int32) {
        self.fd = fd
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    public init(port: Int, receiveBuffer: Int? = nil) throws {
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
    public func write(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    public func write(_ frame: Dagent_Frame) -> Bool {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        try! FrameCodec.encode(frame, into: &buffer)
        return write(buffer.readBytes(length: buffer.readableBytes)!)
    }

    public func register(_ name: String) -> Bool {
        var frame = Dagent_Frame()
        frame.register.name = name
        frame.register.protocolVersion = WireConstants.protocolVersion
        frame.register.role = .leaf
        return write(frame)
    }

    /// Reads frames until `match` accepts one or the connection ends / times out.
    public func read(until match: (Dagent_Frame) -> Bool) -> Dagent_Frame? {
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
    public func closedByPeer(timeout: Double = 10) -> Bool {
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

/// A failure of the raw socket helpers.
public struct RawPeerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
