import Logging
import NIOCore
import NIOHTTP1

/// Collects one request at a time (head + body within `HTTPLimits`), asks the
/// router for its handler and writes the answer. Requests over a limit, and
/// bytes the HTTP parser refuses, get a status that says why (400, 413, 431,
/// 503) and the connection is closed, since what follows on it cannot be
/// trusted. Responses keep the request order (pipelining assistance runs in
/// front of this handler).
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        /// A request over a limit was answered; the rest of it is ignored until the close.
        case closing
    }

    let router: HTTPRouter
    let limits: HTTPLimits
    let logger: Logger
    let overloaded: Bool
    let stats: HTTPServerStats
    var state = State.idle
    var remote = ""

    init(router: HTTPRouter, limits: HTTPLimits, logger: Logger, overloaded: Bool, stats: HTTPServerStats) {
        self.router = router
        self.limits = limits
        self.logger = logger
        self.overloaded = overloaded
        self.stats = stats
    }

    func channelActive(context: ChannelHandlerContext) {
        remote = context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .idle = state else { return }
            if overloaded {
                refuse(context, head.version, .serviceUnavailable,
                       "this listener has http_max_connections=\(limits.maxConnections) connections open")
                return
            }
            let headerBytes = Self.headerBytes(head)
            if headerBytes > limits.maxHeaderBytes {
                refuse(context, head.version, .requestHeaderFieldsTooLarge,
                       "request line and headers are \(headerBytes) bytes, over http_max_header_bytes=\(limits.maxHeaderBytes)")
                return
            }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limits.maxBodyBytes {
                refuse(context, head.version, .payloadTooLarge,
                       "Content-Length \(length) is over http_max_body_bytes=\(limits.maxBodyBytes)")
                return
            }
            state = .receiving(head, context.channel.allocator.buffer(capacity: 0))
        case .body(var chunk):
            guard case .receiving(let head, var body) = state else { return }
            if body.readableBytes + chunk.readableBytes > limits.maxBodyBytes {
                refuse(context, head.version, .payloadTooLarge,
                       "request body is over http_max_body_bytes=\(limits.maxBodyBytes)")
                return
            }
            state = .idle  // drop the reference so the append does not copy
            body.writeBuffer(&chunk)
            state = .receiving(head, body)
        case .end:
            guard case .receiving(let head, let body) = state else { return }
            state = .idle
            dispatch(context, head, body)
        }
    }

    func dispatch(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ body: ByteBuffer) {
        stats.requests.add(1)
        let request = HTTPRequest(method: head.method, uri: head.uri, headers: head.headers, body: body, remote: remote)
        let loop = context.eventLoop
        let future: EventLoopFuture<HTTPResponse>
        switch router.match(method: head.method, path: request.path) {
        case .notFound:
            future = loop.makeSucceededFuture(.error(.notFound, "nothing is served at \(request.path)"))
        case .methodNotAllowed(let allowed):
            var r = HTTPResponse.error(.methodNotAllowed, "\(head.method) is not allowed on \(request.path) (allowed: \(allowed.joined(separator: ", ")))")
            r.headers.add(name: "Allow", value: allowed.joined(separator: ", "))
            future = loop.makeSucceededFuture(r)
        case .handler(let handler, let route):
            let promise = loop.makePromise(of: HTTPResponse.self)
            let timeout = limits.handlerTimeout
            let timer = loop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) {
                promise.succeed(.error(.gatewayTimeout, "the handler of \(route.path) (\(route.owner)) did not answer within http_handler_timeout=\(timeout)s"))
            }
            handler(request, loop).hop(to: loop).whenComplete { result in
                timer.cancel()
                switch result {
                case .success(let r): promise.succeed(r)
                case .failure(let error): promise.succeed(.error(.internalServerError, "the handler of \(route.path) (\(route.owner)) failed: \(error)"))
                }
            }
            future = promise.futureResult
        }
        let keepAlive = head.isKeepAlive
        future.whenSuccess { [weak self] response in
            guard let self else { return }
            self.write(context, head, response, keepAlive: keepAlive)
        }
    }

    func write(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ response: HTTPResponse, keepAlive: Bool) {
        guard context.channel.isActive else { return }
        if response.status.code >= 400 { stats.errors.add(1) }
        var headers = response.headers
        headers.replaceOrAdd(name: "Content-Length", value: "\(response.body.readableBytes)")
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        else if head.version.minor == 0 { headers.replaceOrAdd(name: "Connection", value: "keep-alive") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))), promise: nil)
        if head.method != .HEAD && response.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        let done = context.writeAndFlushPromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive { done.futureResult.whenComplete { _ in context.close(promise: nil) } }
    }

    /// Answers a request that broke a limit and closes the connection.
    func refuse(_ context: ChannelHandlerContext, _ version: HTTPVersion, _ status: HTTPResponseStatus, _ why: String) {
        state = .closing
        logger.info("http \(remote): \(status.code) \(why)")
        let head = HTTPRequestHead(version: version, method: .GET, uri: "/", headers: ["Connection": "close"])
        write(context, head, .error(status, why), keepAlive: false)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parse = error as? HTTPParserError {
            if case .closing = state { return }
            let status: HTTPResponseStatus = parse == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
            let why = parse == .headerOverflow
                ? "request headers are over the HTTP parser's ceiling of 80 KiB (http_max_header_bytes=\(limits.maxHeaderBytes))"
                : "the request is not valid HTTP/1.x: \(parse)"
            refuse(context, .http1_1, status, why)
            return
        }
        logger.debug("http \(remote): \(error)")
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    static func headerBytes(_ head: HTTPRequestHead) -> Int {
        var n = head.uri.utf8.count + "\(head.method)".utf8.count + 12
        for (name, value) in head.headers { n += name.utf8.count + value.utf8.count + 4 }
        return n
    }
}

private extension ChannelHandlerContext {
    func writeAndFlushPromise() -> EventLoopPromise<Void> { eventLoop.makePromise() }
}
