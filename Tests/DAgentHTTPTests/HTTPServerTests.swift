import DAgentHTTP
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import XCTest

/// A real listener on loopback, spoken to over a plain socket.
final class HTTPServerTests: XCTestCase {
    var group: MultiThreadedEventLoopGroup!
    var server: HTTPServer!
    var port = 0
    var dir = ""

    override func setUpWithError() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var limits = HTTPLimits()
        limits.maxHeaderBytes = 2048
        limits.maxBodyBytes = 100
        limits.handlerTimeout = 0.3
        server = HTTPServer(limits: limits, logger: Logger(label: "test"))
        try server.router.add("/healthz", owner: "t") { _, loop in loop.makeSucceededFuture(.text("ok\n")) }
        try server.router.add("/echo", methods: ["POST"], owner: "t") { req, loop in
            loop.makeSucceededFuture(HTTPResponse(status: .ok, body: req.body))
        }
        try server.router.add("/slow", owner: "t") { _, loop in loop.makePromise(of: HTTPResponse.self).futureResult }
        dir = NSTemporaryDirectory() + "dagent-http-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/www/sub", withIntermediateDirectories: true)
        try "<h1>hi</h1>".write(toFile: dir + "/www/index.html", atomically: true, encoding: .utf8)
        try "let a = 1;".write(toFile: dir + "/www/sub/a.js", atomically: true, encoding: .utf8)
        try "secret".write(toFile: dir + "/secret.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir + "/www/escape.txt", withDestinationPath: dir + "/secret.txt")
        try HTTPStaticDirectory(prefix: "/static/", directory: dir + "/www").register(on: server.router, owner: "t")
        try server.start(host: "127.0.0.1", port: 0, group: group).wait()
        port = server.boundPort!
    }

    override func tearDownWithError() throws {
        _ = try server.stop()?.wait()
        try group.syncShutdownGracefully()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Sends `raw` and returns everything until the server closes (or 5 s pass).
    func exchange(_ raw: String) throws -> String {
        let fd = connectRaw(port)
        defer { close(fd) }
        let bytes = Array(raw.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        var out = ""
        _ = readUntilClosed(fd, &out)
        return out
    }

    func get(_ path: String, _ extra: String = "") throws -> String {
        try exchange("GET \(path) HTTP/1.1\r\nHost: x\r\n\(extra)Connection: close\r\n\r\n")
    }

    func testHealthzAndNotFound() throws {
        let ok = try get("/healthz")
        XCTAssertTrue(ok.hasPrefix("HTTP/1.1 200 OK"), ok)
        XCTAssertTrue(ok.hasSuffix("ok\n"), ok)
        let missing = try get("/nope")
        XCTAssertTrue(missing.hasPrefix("HTTP/1.1 404 Not Found"), missing)
        XCTAssertTrue(missing.contains("nothing is served at /nope"), missing)
    }

    func testMethodNotAllowedNamesAllowedMethods() throws {
        let r = try exchange("DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(r.hasPrefix("HTTP/1.1 405"), r)
        XCTAssertTrue(r.contains("Allow: GET, HEAD"), r)
        let head = try exchange("HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200"), head)
        XCTAssertFalse(head.contains("ok\n"), head)
    }

    func testBodyWithinAndOverTheLimit() throws {
        let ok = try exchange("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        XCTAssertTrue(ok.hasPrefix("HTTP/1.1 200") && ok.hasSuffix("hello"), ok)
        let big = String(repeating: "x", count: 150)
        let declared = try exchange("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 150\r\n\r\n\(big)")
        XCTAssertTrue(declared.hasPrefix("HTTP/1.1 413"), declared)
        XCTAssertTrue(declared.contains("http_max_body_bytes=100"), declared)
        let chunked = try exchange("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n96\r\n\(big)\r\n0\r\n\r\n")
        XCTAssertTrue(chunked.hasPrefix("HTTP/1.1 413"), chunked)
    }

    func testOversizedHeadersAndGarbage() throws {
        let long = try get("/healthz", "X-Big: \(String(repeating: "a", count: 3000))\r\n")
        XCTAssertTrue(long.hasPrefix("HTTP/1.1 431"), long)
        XCTAssertTrue(long.contains("http_max_header_bytes=2048"), long)
        let huge = try get("/healthz", "X-Huge: \(String(repeating: "a", count: 100_000))\r\n")
        XCTAssertTrue(huge.hasPrefix("HTTP/1.1 431"), huge)
        let garbage = try exchange("\u{01}\u{02} nonsense\r\n\r\n")
        XCTAssertTrue(garbage.hasPrefix("HTTP/1.1 400"), garbage)
        XCTAssertTrue(garbage.contains("not valid HTTP"), garbage)
        // The listener still serves afterwards.
        XCTAssertTrue(try get("/healthz").hasPrefix("HTTP/1.1 200"))
    }

    func testHandlerTimeoutIs504() throws {
        let r = try get("/slow")
        XCTAssertTrue(r.hasPrefix("HTTP/1.1 504"), r)
        XCTAssertTrue(r.contains("http_handler_timeout=0.3s"), r)
    }

    func testStaticFilesAndTraversal() throws {
        let index = try get("/static/")
        XCTAssertTrue(index.hasPrefix("HTTP/1.1 200") && index.contains("text/html") && index.hasSuffix("<h1>hi</h1>"), index)
        let js = try get("/static/sub/a.js")
        XCTAssertTrue(js.contains("text/javascript") && js.hasSuffix("let a = 1;"), js)
        for bad in ["/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/sub/..%2f..%2fsecret.txt", "/static/a%00b", "/static/%zz"] {
            let r = try get(bad)
            XCTAssertTrue(r.hasPrefix("HTTP/1.1 400") || r.hasPrefix("HTTP/1.1 404"), "\(bad): \(r)")
            XCTAssertFalse(r.contains("secret\n") || r.hasSuffix("secret"), "\(bad) leaked: \(r)")
        }
        let symlink = try get("/static/escape.txt")
        XCTAssertTrue(symlink.hasPrefix("HTTP/1.1 403"), symlink)
        XCTAssertTrue(try get("/static/none.js").hasPrefix("HTTP/1.1 404"))
    }

    func testKeepAliveServesSeveralRequestsInOrder() throws {
        let r = try exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let statuses = r.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        XCTAssertEqual(statuses, ["200", "404", "200"], r)
    }

    func testRouteRegistrationErrors() throws {
        XCTAssertThrowsError(try server.router.add("/healthz", owner: "other") { _, l in l.makeSucceededFuture(.text("")) }) {
            XCTAssertTrue("\($0)".contains("already served by 't'"), "\($0)")
        }
        XCTAssertThrowsError(try server.router.add("nope", owner: "o") { _, l in l.makeSucceededFuture(.text("")) })
        XCTAssertThrowsError(try server.router.add("/a/../b", owner: "o") { _, l in l.makeSucceededFuture(.text("")) })
        XCTAssertThrowsError(try HTTPStaticDirectory(prefix: "/x/", directory: dir + "/missing"))
        XCTAssertEqual(server.router.removeAll(owner: "t"), 4)
        XCTAssertTrue(try get("/healthz").hasPrefix("HTTP/1.1 404"))
    }

    func testUpgraderFromAnotherModule() throws {
        final class Upgrader: HTTPServerProtocolUpgrader, @unchecked Sendable {
            let supportedProtocol = "x-test"
            let requiredUpgradeHeaders: [String] = []
            func buildUpgradeResponse(channel: Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
                channel.eventLoop.makeSucceededFuture(initialResponseHeaders)
            }
            func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
                let channel = context.channel
                return context.eventLoop.makeSucceededVoidFuture().map {
                    var b = channel.allocator.buffer(capacity: 8)
                    b.writeString("upgraded")
                    channel.writeAndFlush(b).whenComplete { _ in channel.close(promise: nil) }
                }
            }
        }
        server.addUpgrader(owner: "test") { _ in Upgrader() }
        let r = try exchange("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: x-test\r\n\r\n")
        XCTAssertTrue(r.hasPrefix("HTTP/1.1 101"), r)
        XCTAssertTrue(r.hasSuffix("upgraded"), r)
        XCTAssertTrue(try get("/healthz").hasPrefix("HTTP/1.1 200"))
    }

    /// A connection to `port` on loopback whose reads give up after `timeout` seconds.
    func connectRaw(_ port: Int, timeout: Int = 5) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(rc, 0)
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Reads until the peer closes (true) or a read times out (false); `out` gets the bytes.
    func readUntilClosed(_ fd: Int32, _ out: inout String) -> Bool {
        var bytes = [UInt8](), buf = [UInt8](repeating: 0, count: 65536)
        defer { out += String(decoding: bytes, as: UTF8.self) }
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 { return true }
            if n < 0 { return false }
            bytes += buf[0..<n]
        }
    }

    func testIdleKeepAliveConnectionIsClosedAfterTheIdleTimeout() throws {
        var limits = HTTPLimits()
        limits.idleTimeout = 0.3
        let quick = HTTPServer(limits: limits, logger: Logger(label: "test"))
        try quick.router.add("/healthz", owner: "t") { _, loop in loop.makeSucceededFuture(.text("ok\n")) }
        try quick.start(host: "127.0.0.1", port: 0, group: group).wait()
        defer { _ = try? quick.stop()?.wait() }
        let fd = connectRaw(quick.boundPort!)
        defer { close(fd) }
        let request = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        XCTAssertEqual(request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }, request.count)
        var got = ""
        XCTAssertTrue(readUntilClosed(fd, &got), "the idle keep-alive connection was still open after 5 s: \(got)")
        XCTAssertTrue(got.hasPrefix("HTTP/1.1 200"), got)
    }

    func testUpgradedConnectionOutlivesTheHTTPIdleTimeout() throws {
        /// Keeps the upgraded connection open and quiet, then writes after three idle timeouts.
        final class QuietUpgrader: HTTPServerProtocolUpgrader, @unchecked Sendable {
            let supportedProtocol = "x-quiet"
            let requiredUpgradeHeaders: [String] = []
            func buildUpgradeResponse(channel: Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
                channel.eventLoop.makeSucceededFuture(initialResponseHeaders)
            }
            func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
                let channel = context.channel
                channel.eventLoop.scheduleTask(in: .milliseconds(900)) {
                    let idleLeft = (try? channel.pipeline.syncOperations.handler(type: IdleStateHandler.self)) != nil
                    var b = channel.allocator.buffer(capacity: 32)
                    b.writeString(idleLeft ? "idle-handler-left" : "alive")
                    channel.writeAndFlush(b).whenComplete { _ in channel.close(promise: nil) }
                }
                return context.eventLoop.makeSucceededVoidFuture()
            }
        }
        var limits = HTTPLimits()
        limits.idleTimeout = 0.3
        let quick = HTTPServer(limits: limits, logger: Logger(label: "test"))
        quick.addUpgrader(owner: "test") { _ in QuietUpgrader() }
        try quick.start(host: "127.0.0.1", port: 0, group: group).wait()
        defer { _ = try? quick.stop()?.wait() }
        let fd = connectRaw(quick.boundPort!)
        defer { close(fd) }
        let request = Array("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: x-quiet\r\n\r\n".utf8)
        XCTAssertEqual(request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }, request.count)
        var got = ""
        XCTAssertTrue(readUntilClosed(fd, &got), got)
        XCTAssertTrue(got.hasPrefix("HTTP/1.1 101"), got)
        XCTAssertTrue(got.hasSuffix("alive"), "the upgraded connection was not left alone by the HTTP idle timeout: \(got)")
    }
}
