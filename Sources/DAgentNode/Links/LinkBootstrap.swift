import NIOCore
import NIOPosix

/// The one place TCP connections are set up: listening for children, dialing
/// a parent or a peer replica, and one-shot queries (`dagent tree`). Every
/// tree link gets the same options: no Nagle, write-buffer water marks from
/// `slow_consumer_bytes` (a link above the high mark is a slow consumer), and
/// read bursts of 16 messages.
enum LinkBootstrap {
    /// Options of a tree link (nil for a one-shot query).
    struct Options {
        var slowConsumerBytes: Int
    }

    /// Dials `host:port`; `install` adds the channel's handlers.
    static func connect(host: String, port: Int, on loop: EventLoop, connectTimeout: Double, link: Options?,
                        install: @escaping @Sendable (Channel) throws -> Void) -> EventLoopFuture<Channel> {
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(Int64(connectTimeout * 1e9)))
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try install(channel) } }
        if let link {
            bootstrap = bootstrap
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .channelOption(ChannelOptions.writeBufferWaterMark, value: waterMark(link.slowConsumerBytes))
                .channelOption(ChannelOptions.maxMessagesPerRead, value: 16)
        }
        return bootstrap.connect(host: host, port: port)
    }

    /// Listens on `host:port`; `install` adds each accepted child's handlers.
    static func listen(host: String, port: Int, on loop: EventLoop, slowConsumerBytes: Int,
                       install: @escaping @Sendable (Channel) throws -> Void) -> EventLoopFuture<Channel> {
        ServerBootstrap(group: loop)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: waterMark(slowConsumerBytes))
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture { try install(channel) } }
            .bind(host: host, port: port)
    }

    static func waterMark(_ slowConsumerBytes: Int) -> ChannelOptions.Types.WriteBufferWaterMark {
        .init(low: slowConsumerBytes / 2, high: slowConsumerBytes)
    }
}
