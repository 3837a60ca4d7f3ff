import DAgentWire
import NIOCore
import NIOPosix
import NIOSSL
import DAgentTLS

/// Asks the node listening at an address what it sees (`dagent tree`).
/// Opens a link, registers query-only (TreeQuery-register.swift), sends a
/// `TreeRequest`, waits for the `TreeReply` and closes. On `msgq://PATH` the
/// link is a throwaway channel on the agent's queues.
public enum TreeQuery {
    static func fetchMsgq(path: String, name: String, timeout: Double, loop: EventLoop) -> EventLoopFuture<Dagent_TreeReply> {
        let attachment: MsgqAttachment
        do {
            attachment = try MsgqAttachment.open(path: path, nowNs: NIODeadline.now().uptimeNanoseconds)
        } catch {
            return loop.makeFailedFuture(error)
        }
        let promise = loop.makePromise(of: Dagent_TreeReply.self)
        let channel = MsgqWire.randomChannel()
        let incarnation = UInt32.random(in: 1...UInt32.max)
        let receiver = MsgqReceiver(
            queue: attachment.down, mtype: Int(channel), senderIsMtype: false, msgmax: attachment.limits.msgmax,
            maxFrameBytes: WireConstants.defaultMaxFrameBytes, eventLoop: loop, label: "msgq://\(path) tree query",
            deliver: { batch in
                for case let .frames(sender, inc, bodies) in batch where sender == MsgqWire.agentChannel && inc == incarnation {
                    for body in bodies {
                        guard let frame = try? Dagent_Frame(serializedBytes: Array(body.readableBytesView)) else { continue }
                        if case .treeReply(let reply)? = frame.body { promise.succeed(reply) }
                        if let error = refusal(frame, endpoint: "msgq://\(path)") { promise.fail(error) }
                    }
                }
            },
            failed: { error in promise.fail(DAgentError(.refused, "msgq://\(path): \(error)")) })
        receiver.start()
        func post(_ message: MsgqOutMessage, to queue: SysVQueue? = nil) {
            var m = message
            m.setType(Int(channel))
            _ = (queue ?? attachment.up).send(m.bytes, wait: false)
        }
        var writer = FrameWriter()
        for frame in queryFrames(name: name) { try? writer.append(frame) }
        var messages: [MsgqOutMessage] = []
        MsgqPacker(maxText: attachment.limits.msgmax).pack(writer.take(allocator: ByteBufferAllocator()), sender: channel,
                                                           incarnation: incarnation, into: &messages)
        for m in messages { post(m) }
        let timer = loop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) {
            promise.fail(DAgentError(.timeout, "the agent at msgq://\(path) did not answer the tree request within \(timeout)s"))
        }
        promise.futureResult.whenComplete { _ in
            timer.cancel()
            post(MsgqWire.control(.bye, sender: channel, incarnation: incarnation))
            receiver.stop()
            post(MsgqWire.control(.wake, sender: channel, incarnation: incarnation), to: attachment.down)
            attachment.detach()
        }
        return promise.futureResult
    }

    /// Asks the node at `endpoint` for its view of the tree. The query
    /// registers query-only as `name` (default: `tree-` and random hex), after
    /// the cluster secret handshake when `secret` is set (TCP only: message
    /// queues trust the user). With `tls`, the connection is mutual TLS (a node
    /// with `tls:` accepts nothing else).
    public static func fetch(_ endpoint: Endpoint, timeout: Double = 3.0, name: String? = nil, secret: String = "",
                             group: EventLoopGroup, tls: TLSContexts? = nil) -> EventLoopFuture<Dagent_TreeReply> {
        let loop = group.next()
        let name = name ?? defaultName()
        if case let .msgq(path) = endpoint { return fetchMsgq(path: path, name: name, timeout: timeout, loop: loop) }
        guard case let .tcp(host, port) = endpoint else {
            return loop.makeFailedFuture(ConfigError("dagent tree needs a tcp:// or msgq:// address (got \(endpoint))"))
        }
        let promise = loop.makePromise(of: Dagent_TreeReply.self)
        let connecting = LinkBootstrap.connect(host: host, port: port, on: loop, connectTimeout: timeout, link: nil) { channel in
            let sync = channel.pipeline.syncOperations
            if let tls { try sync.addHandler(NIOSSLClientHandler(context: tls.client, serverHostname: nil)) }
            try sync.addHandler(ByteToMessageHandler(FrameDecoder()))
            try sync.addHandler(MessageToByteHandler(FrameEncoder()))
            try sync.addHandler(QueryHandler(promise: promise, name: name, secret: secret, endpoint: "\(endpoint)"))
        }
        connecting.whenComplete { result in
            switch result {
            case .failure(let error):
                promise.fail(DAgentError(.refused, "cannot connect to \(endpoint): \(error)"))
            case .success(let channel):
                let timer = loop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) {
                    promise.fail(DAgentError(.timeout, "\(endpoint) did not answer the tree request within \(timeout)s"))
                }
                promise.futureResult.whenComplete { _ in
                    timer.cancel()
                    channel.close(promise: nil)
                }
            }
        }
        return promise.futureResult
    }
}

/// Renders a `TreeReply` as an indented tree or as JSON.
public enum TreeRender {
    public static func roleName(_ role: Dagent_NodeRole) -> String {
        switch role {
        case .leaf: return "leaf"
        case .agent: return "agent"
        case .proxy: return "proxy"
        case .root: return "root"
        case .UNRECOGNIZED(let n): return "role\(n)"
        }
    }

    /// Depth of each name below the queried node (1 = direct child).
    public static func levels(_ reply: Dagent_TreeReply) -> [String: Int] {
        let parents = Dictionary(reply.names.map { ($0.name, $0.parent) }, uniquingKeysWith: { a, _ in a })
        var out: [String: Int] = [:]
        for record in reply.names {
            var depth = 1
            var p = record.parent
            var guardCount = 0
            while p != reply.name, let next = parents[p], guardCount < 256 {
                depth += 1
                p = next
                guardCount += 1
            }
            out[record.name] = depth
        }
        return out
    }

    public static func text(_ reply: Dagent_TreeReply) -> String {
        var children: [String: [Dagent_NameRecord]] = [:]
        let known = Set(reply.names.map(\.name))
        for record in reply.names {
            let parent = known.contains(record.parent) ? record.parent : reply.name
            children[parent, default: []].append(record)
        }
        let linkByPeer = Dictionary(reply.links.map { ($0.peer, $0) }, uniquingKeysWith: { a, _ in a })
        let processByName = processesByName(reply)
        var lines: [String] = []
        let up = reply.parent.isEmpty ? "top of the tree" : "parent '\(reply.parent)' \(reply.parentReady ? "ready" : "NOT READY")"
        lines.append("\(reply.name) [\(roleName(reply.role))] (level 0, \(up))")
        func walk(_ name: String, _ prefix: String) {
            let kids = (children[name] ?? []).sorted { $0.name < $1.name }
            for (i, kid) in kids.enumerated() {
                let last = i == kids.count - 1
                var line = prefix + (last ? "└── " : "├── ") + "\(kid.name) [\(roleName(kid.role))]"
                if let link = linkByPeer[kid.name] {
                    line += "  link \(link.address) in=\(link.framesIn) out=\(link.framesOut) pending=\(link.bytesPending)B"
                    line += pubsubSuffix(link)
                }
                if let p = processByName[kid.name] { line += "  process \(p.state) restarts=\(p.restarts)" }
                lines.append(line)
                walk(kid.name, prefix + (last ? "    " : "│   "))
            }
        }
        walk(reply.name, "")
        lines.append(contentsOf: processLines(reply))
        lines.append(contentsOf: agentProcessLines(reply, now: Date().timeIntervalSince1970))
        if let parentLink = reply.links.first(where: { $0.isParent }) {
            lines.append("parent link: \(parentLink.peer.isEmpty ? "?" : parentLink.peer) \(parentLink.address) in=\(parentLink.framesIn) out=\(parentLink.framesOut) pending=\(parentLink.bytesPending)B" + pubsubSuffix(parentLink))
        }
        if reply.queues.isEmpty {
            lines.append("send queues: empty")
        } else {
            lines.append("send queues: " + reply.queues.map { "\($0.destination)=\($0.depth)" }.joined(separator: " "))
        }
        lines.append("names: \(reply.names.count)  routed: \(reply.messagesRouted)  delivered: \(reply.messagesDelivered)")
        lines += pubsubLines(reply)
        if reply.hasPluginHost {
            let h = reply.pluginHost
            lines.append("plugins: python \(h.python.isEmpty ? "?" : h.python)\(h.running ? "" : " NOT RUNNING"), handler_budget \(h.handlerBudget)s, "
                         + "queued=\(h.queued) handled=\(h.handled) dropped=\(h.dropped) unhandled=\(h.unhandled)")
            for p in h.plugins {
                var line = "  \(p.name) \(p.state == "loaded" ? "loaded" : p.state.uppercased())"
                if !p.types.isEmpty { line += " types=\(p.types.map(String.init).joined(separator: ","))" }
                line += " handled=\(p.handled) errors=\(p.errors)"
                if p.overBudget > 0 || p.interrupts > 0 { line += " over_budget=\(p.overBudget) interrupts=\(p.interrupts)" }
                if !p.error.isEmpty { line += ": \(p.error)" }
                lines.append(line)
            }
        }
        if reply.hasPushGateway { lines.append(contentsOf: pushText(reply.pushGateway)) }
        if reply.directOut != 0 || reply.directIn != 0 {
            lines.append("brother p2p: out=\(reply.directOut) in=\(reply.directIn)")
        }
        for q in reply.msgq {
            lines.append("msgq://\(q.path): leaves=\(q.leaves) table=\(q.tableNames) names (generation \(q.tableGeneration)) msgmax=\(q.msgmax)B")
            lines.append("    up:   \(q.up.bytes)/\(q.up.limit)B in \(q.up.messages) msgs   down: \(q.down.bytes)/\(q.down.limit)B in \(q.down.messages) msgs   purged=\(q.purged) garbage=\(q.garbage)")
        }
        return lines.joined(separator: "\n")
    }

    public static func json(_ reply: Dagent_TreeReply) -> String {
        let levels = levels(reply)
        func q(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                default:
                    if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
                }
            }
            return out + "\""
        }
        let names = reply.names.map {
            "{\"name\":\(q($0.name)),\"parent\":\(q($0.parent)),\"role\":\(q(roleName($0.role))),\"level\":\(levels[$0.name] ?? 1),\"epoch\":\($0.epoch)}"
        }
        let links = reply.links.map {
            "{\"peer\":\(q($0.peer)),\"address\":\(q($0.address)),\"is_parent\":\($0.isParent),\"ready\":\($0.ready),\"frames_in\":\($0.framesIn),\"frames_out\":\($0.framesOut),\"bytes_pending\":\($0.bytesPending)\(pubsubLinkJSON($0, q))}"
        }
        let queues = reply.queues.map { "{\"destination\":\(q($0.destination)),\"depth\":\($0.depth)}" }
        var plugins = ""
        if reply.hasPluginHost {
            let h = reply.pluginHost
            let list = h.plugins.map { p in
                let by = p.errorsBy.keys.sorted().map { "\(q($0)):\(p.errorsBy[$0]!)" }.joined(separator: ",")
                return "{\"name\":\(q(p.name)),\"path\":\(q(p.path)),\"state\":\(q(p.state)),\"error\":\(q(p.error)),"
                    + "\"types\":[\(p.types.map(String.init).joined(separator: ","))],\"handled\":\(p.handled),\"errors\":\(p.errors),"
                    + "\"errors_by\":{\(by)},\"over_budget\":\(p.overBudget),\"interrupts\":\(p.interrupts),\"loads\":\(p.loads),"
                    + "\"last_error\":\(q(p.lastError)),\"timers\":\(p.timers),\"tasks\":\(p.tasks)}"
            }
            plugins = ",\"plugin_host\":{\"running\":\(h.running),\"python\":\(q(h.python)),\"dirs\":[\(h.dirs.map(q).joined(separator: ","))],"
                + "\"handler_budget\":\(h.handlerBudget),\"queued\":\(h.queued),\"handled\":\(h.handled),\"dropped\":\(h.dropped),"
                + "\"unhandled\":\(h.unhandled),\"plugins\":[\(list.joined(separator: ","))]}"
        }
        func stat(_ s: Dagent_QueueStat) -> String { "{\"bytes\":\(s.bytes),\"messages\":\(s.messages),\"limit\":\(s.limit)}" }
        let msgq = reply.msgq.map {
            "{\"path\":\(q($0.path)),\"leaves\":\($0.leaves),\"table_names\":\($0.tableNames),\"table_generation\":\($0.tableGeneration),"
                + "\"up\":\(stat($0.up)),\"down\":\(stat($0.down)),\"purged\":\($0.purged),\"garbage\":\($0.garbage),\"msgmax\":\($0.msgmax)}"
        }
        let push: String = reply.hasPushGateway ? ",\"push_gateway\":" + pushJSON(reply.pushGateway) : ""
        return "{\"name\":\(q(reply.name)),\"role\":\(q(roleName(reply.role))),\"level\":0,\"parent\":\(q(reply.parent)),\"parent_ready\":\(reply.parentReady),"
            + "\"names\":[\(names.joined(separator: ","))],\"links\":[\(links.joined(separator: ","))],"
            + "\"queues\":[\(queues.joined(separator: ","))],\"messages_routed\":\(reply.messagesRouted),\"messages_delivered\":\(reply.messagesDelivered),"
            + "\"direct_out\":\(reply.directOut),\"direct_in\":\(reply.directIn),\"msgq\":[\(msgq.joined(separator: ","))]\(plugins)\(push)\(pubsubJSON(reply, q))\(processJSON(reply, quote: q))\(agentProcessJSON(reply, quote: q))}"
    }
}

import Foundation
import DAgentRouting
import DAgentLink
import DAgentMsgq
