import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A `ws://HOST:PORT/PATH?QUERY` address.
struct WSURL {
    var host: String
    var port: Int
    /// Path and query, as sent in the request line.
    var target: String

    init(_ s: String) throws {
        guard s.hasPrefix("ws://") else { throw WSClientError("a WebSocket URL starts with ws:// (got '\(s)')") }
        let rest = s.dropFirst(5)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<slash]
        target = slash == rest.endIndex ? "/" : String(rest[slash...])
        if target.hasPrefix("?") { target = "/" + target }
        guard let colon = authority.lastIndex(of: ":"), let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else {
            throw WSClientError("the WebSocket URL '\(s)' needs HOST:PORT with a port in 1...65535")
        }
        host = String(authority[..<colon])
        port = p
    }

    /// The same URL with `extra` appended to its query.
    func adding(query extra: String) -> WSURL {
        var u = self
        u.target += (target.contains("?") ? "&" : "?") + extra
        return u
    }
}

struct WSClientError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// What a client connection does with the WebSocket once it is open. Called on
/// the connection's event loop.
protocol WSConnectionDelegate: AnyObject {
    /// The upgrade succeeded.
    func opened(_ conn: WSConnection)
    /// One whole data message (text or binary; fragments joined).
    func message(_ conn: WSConnection, _ data: ByteBuffer)
    /// The connection closed (`code`: the server's close code, 1006 without one).
    func closed(_ conn: WSConnection, code: UInt16, reason: String)
}

/// One client WebSocket (NIOHTTP1 upgrade with `NIOWebSocketClientUpgrader`).
/// Frames it sends are masked, as RFC 6455 requires of clients; pings are answered.
final class WSConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let index: Int
    unowned let delegate: WSConnectionDelegate
    var channel: Channel?
    var partial: ByteBuffer?
    var closeCode: UInt16 = 1006
    var closeReason = ""
    var isClosed = false

    init(index: Int, delegate: WSConnectionDelegate) {
        self.index = index
        self.delegate = delegate
    }

    /// Connects and upgrades; the future succeeds once the WebSocket is open.
    static func connect(_ url: WSURL, index: Int, delegate: WSConnectionDelegate, group: EventLoopGroup, maxFrame: Int = 1 << 22) -> EventLoopFuture<WSConnection> {
        let conn = WSConnection(index: index, delegate: delegate)
        let loop = group.next()
        let upgraded = loop.makePromise(of: WSConnection.self)
        ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let request = WSUpgradeRequest(url: url, failed: upgraded)
                    let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: maxFrame, automaticErrorHandling: false) { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            // The request handler leaves before the WebSocket bytes flow.
                            channel.pipeline.syncOperations.removeHandler(request, promise: nil)
                            try channel.pipeline.syncOperations.addHandler(conn)
                        }
                    }
                    let config: NIOHTTPClientUpgradeConfiguration = (upgraders: [upgrader], completionHandler: { _ in })
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes, withClientUpgrade: config)
                    try channel.pipeline.syncOperations.addHandler(request)
                }
            }
            .connect(host: url.host, port: url.port)
            .whenComplete { result in
                switch result {
                case .success(let ch):
                    conn.channel = ch
                    conn.onOpen = { upgraded.succeed(conn) }
                    ch.closeFuture.whenComplete { _ in upgraded.fail(WSClientError("ws://\(url.host):\(url.port)\(url.target): closed before the upgrade")) }
                case .failure(let e):
                    upgraded.fail(WSClientError("cannot connect to \(url.host):\(url.port): \(e)"))
                }
            }
        return upgraded.futureResult
    }

    var onOpen: (() -> Void)?

    func handlerAdded(context: ChannelHandlerContext) {
        channel = context.channel
        context.eventLoop.execute { [self] in
            delegate.opened(self)
            onOpen?()
            onOpen = nil
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            if frame.fin { delegate.message(self, frame.data) } else { partial = frame.data }
        case .continuation:
            guard var p = partial else { return }
            p.writeBuffer(&frame.data)
            if frame.fin {
                partial = nil
                delegate.message(self, p)
            } else {
                partial = p
            }
        case .ping:
            send(opcode: .pong, frame.data, flush: true)
        case .connectionClose:
            var d = frame.data
            closeCode = d.readInteger(as: UInt16.self) ?? 1005
            closeReason = d.readString(length: d.readableBytes) ?? ""
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard !isClosed else { return }
        isClosed = true
        delegate.closed(self, code: closeCode, reason: closeReason)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        closeReason = "\(error)"
        context.close(promise: nil)
    }

    /// Sends one masked frame (`flush: false` leaves it for the next `flush()`).
    func send(opcode: WebSocketOpcode = .text, _ data: ByteBuffer, flush: Bool = true) {
        guard let channel else { return }
        let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: data)
        if flush { channel.writeAndFlush(frame, promise: nil) } else { channel.write(frame, promise: nil) }
    }

    func send(_ text: String, flush: Bool = true) {
        guard let channel else { return }
        send(channel.allocator.buffer(string: text), flush: flush)
    }

    func flush() { channel?.flush() }

    func close() { channel?.close(promise: nil) }
}

/// Writes the HTTP upgrade request when the connection opens (the upgrade
/// handler adds the WebSocket headers), then leaves the pipeline. A response
/// that is not an upgrade fails `failed`.
final class WSUpgradeRequest: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    let url: WSURL
    let failed: EventLoopPromise<WSConnection>

    init(url: WSURL, failed: EventLoopPromise<WSConnection>) {
        self.url = url
        self.failed = failed
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(url.host):\(url.port)")
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.target, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Only a response the upgrade handler did not take reaches here: the upgrade was refused.
        if case .head(let h) = unwrapInboundIn(data) {
            failed.fail(WSClientError("ws://\(url.host):\(url.port)\(url.target): the server answered \(h.status.code) \(h.status.reasonPhrase) instead of upgrading"))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failed.fail(WSClientError("ws://\(url.host):\(url.port)\(url.target): the upgrade failed: \(error)"))
        context.close(promise: nil)
    }
}

/// A plain TCP connection whose replies are read and dropped (the Redis publisher).
final class TCPSink: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var channel: Channel?
    var replies = 0

    static func connect(host: String, port: Int, group: EventLoopGroup) -> EventLoopFuture<TCPSink> {
        let sink = TCPSink()
        return ClientBootstrap(group: group.next())
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(sink) } }
            .connect(host: host, port: port)
            .map { ch in
                sink.channel = ch
                return sink
            }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let b = unwrapInboundIn(data)
        b.withUnsafeReadableBytes { raw in
            for c in raw where c == UInt8(ascii: "\n") { replies += 1 }
        }
    }
}
