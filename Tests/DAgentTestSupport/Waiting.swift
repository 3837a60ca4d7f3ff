import Foundation
import XCTest

/// A free loopback TCP port: bound to 127.0.0.1:0, read back, then released.
public func freePort() -> Int {
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

/// Polls `condition` every `poll` seconds until it holds; after `timeout` seconds fails the
/// test with "timed out after Ns waiting for WHAT" and `details` (evaluated only then).
/// Tests wait for conditions with a deadline this way, never with a fixed sleep.
public func waitFor(_ what: String, timeout: Double = 10, poll: Double = 0.005, details: @autoclosure () -> String = "",
                    file: StaticString = #filePath, line: UInt = #line, _ condition: () throws -> Bool) rethrows {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        usleep(useconds_t(poll * 1e6))
    }
    let more = details()
    XCTFail("timed out after \(timeout)s waiting for \(what)\(more.isEmpty ? "" : "\n" + more)", file: file, line: line)
}
