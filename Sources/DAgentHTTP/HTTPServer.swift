import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Makes an upgrader for one new connection (e.g. NIOWebSocket's
/// `NIOWebSocketServerUpgrader` for `/ws`). Called on the connection's event loop.
public typealias HTTPUpgraderFactory = @Sendable (Channel) -> any HTTPServerProtocolUpgrader

/// Counters of one listener, readable from any thread.
public final class HTTPServerStats: Sendable {
    public let connections = Synchronization.Atomic<Int>(0)
    public let requests = Synchronization.Atomic<Int>(0)
    public let errors = Synchronization.Atomic<Int>(0)
    public let upgrades = Synchronization.Atomic<Int>(0)
    init() {}
}

extension Synchronization.Atomic where Value == Int {
    @inline(__always) func add(_ n: Int) { _ = wrappingAdd(n, ordering: .relaxed) }
    /// The value now (relaxed).
    public var now: Int { load(ordering: .relaxed) }
}

/// One node's HTTP/1.1 listener (NIOHTTP1). Its routes (`router`) and its
/// protocol upgraders can be added by any module, before or after `start`:
///
/// ```swift
/// let server = HTTPServer(limits: limits, logger: logger)
/// try server.router.add("/healthz", owner: "node") { _, loop in loop.makeSucceededFuture(.text("ok\n")) }
/// server.addUpgrader(owner: "push") { channel in NIOWebSocketServerUpgrader(...) }
/// try server.start(host: "127.0.0.1", port: 8080, group: group).wait()
/// ```
///
/// Upgraders apply to connections opened after they were added. A request
/// that asks for an upgrade no upgrader takes is served as a plain request.
public final class HTTPServer: Sendable {
    public let router: HTTPRouter
    public let limits: HTTPLimits
    public let stats = HTTPServerStats()
    let logger: Logger
    private let upgraders = NIOLockedValueBox<[(owner: String, make: HTTPUpgraderFactory)]>([])
    private let channel = NIOLockedValueBox<Channel?>(nil)

    public init(router: HTTPRouter = HTTPRouter(), limits: HTTPLimits = HTTPLimits(), logger: Logger) {
        self.router = router
        self.limits = limits
        var log = logger
        log[metadataKey: "component"] = "http"
        self.logger = log
    }

    /// Adds an upgrader factory (for connections opened from now on).
    public func addUpgrader(owner: String, _ make: @escaping HTTPUpgraderFactory) {
        upgraders.withLockedValue { $0.append((owner, make)) }
    }

    /// Removes the upgraders of `owner`.
    public func removeUpgraders(owner: String) {
        upgraders.withLockedValue { $0.removeAll { $0.owner == owner } }
    }

    /// Binds `host:port` (0 picks a free port; see `boundPort`).
    public func start(host: String, port: Int, group: EventLoopGroup) -> EventLoopFuture<Void> {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.initialize(channel) }
            }
        return bootstrap.bind(host: host, port: port).map { ch in
            self.channel.withLockedValue { $0 = ch }
            self.logger.info("http listening on \(ch.localAddress?.description ?? "?")")
        }.flatMapErrorThrowing { error in
            throw HTTPConfigError("cannot listen for http on tcp://\(host):\(port): \(error)")
        }
    }

    /// The pipeline name of the keep-alive idle timer (`http_idle_timeout`).
    static let idleHandlerName = "dagent-http-idle"

    func initialize(_ channel: Channel) throws {
        let open = stats.connections.wrappingAdd(1, ordering: .relaxed).newValue
        let stats = self.stats
        channel.closeFuture.whenComplete { _ in stats.connections.add(-1) }
        let handler = HTTPRequestHandler(router: router, limits: limits, logger: logger,
                                         overloaded: open > limits.maxConnections, stats: stats)
        let made = upgraders.withLockedValue { $0.map(\.make) }.map { $0(channel) }
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(IdleStateHandler(allTimeout: .nanoseconds(Int64(limits.idleTimeout * 1e9))), name: Self.idleHandlerName)
        if made.isEmpty {
            try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: false)
        } else {
            try sync.configureHTTPServerPipeline(
                withPipeliningAssistance: true,
                withServerUpgrade: (upgraders: made, completionHandler: { context in
                    stats.upgrades.add(1)
                    context.pipeline.syncOperations.removeHandler(handler, promise: nil)
                    // `http_idle_timeout` is for HTTP keep-alive: its events were handled by the
                    // request handler just removed, so past the upgrade the idle handler would only
                    // cost a timer reset and a promise per write. The upgraded protocol keeps its own
                    // liveness (the push gateway: client pings, `close_timeout`).
                    context.pipeline.syncOperations.removeHandler(name: Self.idleHandlerName, promise: nil)
                }),
                withErrorHandling: false)
        }
        try sync.addHandler(handler)
    }

    /// The port actually bound (after `start`).
    public var boundPort: Int? { channel.withLockedValue { $0?.localAddress?.port } }

    /// Closes the listener (open connections finish their current request).
    public func stop() -> EventLoopFuture<Void>? {
        channel.withLockedValue { $0 }?.close().recover { _ in }
    }
}
