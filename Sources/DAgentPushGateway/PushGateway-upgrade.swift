import DAgentPush
import NIOCore
import NIOHTTP1
import NIOWebSocket

extension PushGateway {
    /// The path browsers connect to.
    public static let path = "/ws"

    /// An upgrader for one new HTTP connection, for the node's HTTP listener
    /// (`HTTPServer.addUpgrader(owner: "push", gateway.makeUpgrader)`): upgrades
    /// `GET /ws?token=...` and leaves every other request to the listener.
    /// A client that offers permessage-deflate gets it (unless `deflate` is off).
    public func makeUpgrader(_ channel: Channel) -> HTTPServerProtocolUpgrader {
        let maxFrame = hub.limits.maxFrameBytes
        let deflate = hub.limits.deflate
        return NIOWebSocketServerUpgrader(
            maxFrameSize: maxFrame,
            automaticErrorHandling: false,
            shouldUpgrade: { channel, head in
                let (path, _) = Self.split(head.uri)
                guard path == Self.path else { return channel.eventLoop.makeSucceededFuture(nil) }
                var headers = HTTPHeaders()
                if deflate, let p = PushDeflateParams.negotiate(head.headers["sec-websocket-extensions"]) {
                    headers.add(name: "Sec-WebSocket-Extensions", value: p.header)
                }
                return channel.eventLoop.makeSucceededFuture(headers)
            },
            upgradePipelineHandler: { [self] channel, head in
                let (_, query) = Self.split(head.uri)
                let token = Self.queryValue(query, "token")
                let remote = channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
                let params = deflate ? PushDeflateParams.negotiate(head.headers["sec-websocket-extensions"]) : nil
                return channel.eventLoop.makeCompletedFuture {
                    // The gateway frames each message once and writes it below NIO's encoder.
                    let encoder = try? channel.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
                    let handler = PushClientHandler(gateway: self, token: token, remote: remote, maxFrameBytes: maxFrame,
                                                    deflate: params, encoder: encoder)
                    try channel.pipeline.syncOperations.addHandler(PushInflateHandler(params: params, maxBytes: maxFrame))
                    try channel.pipeline.syncOperations.addHandler(
                        NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 256, maxAccumulatedFrameSize: maxFrame))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            })
    }

    static func split(_ uri: String) -> (path: Substring, query: Substring) {
        guard let q = uri.firstIndex(of: "?") else { return (uri[...], "") }
        return (uri[..<q], uri[uri.index(after: q)...])
    }

    /// The percent-decoded value of `name` in a query string.
    static func queryValue(_ query: Substring, _ name: String) -> String? {
        for part in query.split(separator: "&") {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, kv[0] == name else { continue }
            return percentDecode(kv[1])
        }
        return nil
    }

    static func percentDecode(_ s: Substring) -> String? {
        var out: [UInt8] = []
        var it = s.utf8.makeIterator()
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 65...70: return c - 55
            case 97...102: return c - 87
            default: return nil
            }
        }
        while let c = it.next() {
            if c == UInt8(ascii: "%") {
                guard let a = it.next().flatMap(hex), let b = it.next().flatMap(hex) else { return nil }
                out.append(a << 4 | b)
            } else if c == UInt8(ascii: "+") {
                out.append(0x20)
            } else {
                out.append(c)
            }
        }
        return String(validating: out, as: UTF8.self)
    }
}
