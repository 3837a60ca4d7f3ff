import CPyHost
import DAgentWire
import Foundation
import Logging
import NIOCore
import DAgentNode
import DAgentRouting

/// The C callbacks that `_dagent_host` (cpyhost.c) calls. Each recovers the
/// host from `ctx` and runs on the plugin thread with the GIL held, except
/// `request`, which runs with the GIL released and blocks until the reply.
enum Bridge {
    static func callbacks(for host: PluginHost) -> cpy_callbacks {
        cpy_callbacks(
            ctx: Unmanaged.passUnretained(host).toOpaque(),
            take: take, send: send, request: request, request_async: requestAsync, respond: respond,
            log: log, is_ready: isReady, control: control, handled: handled,
            publish: publish, subscribe: subscribe, unsubscribe: unsubscribe,
            handler_times: handlerTimes, command_answer: commandAnswer)
    }

    @inline(__always)
    static func host(_ ctx: UnsafeMutableRawPointer?) -> PluginHost {
        Unmanaged<PluginHost>.fromOpaque(ctx!).takeUnretainedValue()
    }

    static func string(_ p: UnsafePointer<CChar>?, _ n: Int) -> String {
        guard let p else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
    }

    static func data(_ p: UnsafeRawPointer?, _ n: Int) -> Data {
        guard let p, n > 0 else { return Data() }
        return Data(bytes: p, count: n)
    }

    /// Sets `*reason` (malloc'd) and returns the code.
    static func fail(_ reason: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ code: Dagent_ErrorCode, _ text: String) -> Int32 {
        reason?.pointee = strdup(text)
        return Int32(code.rawValue)
    }

    /// Checks what can be known without the event loop: size and name.
    static func precheck(_ host: PluginHost, _ dst: String, _ len: Int,
                         _ reason: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
        let limit = host.node.config.maxMessageBytes
        if len > limit {
            return fail(reason, .tooLarge, "message to '\(dst)' is \(len) bytes, over max_message_bytes=\(limit)")
        }
        if let problem = NameRules.problem(with: dst) {
            return fail(reason, .noRoute, "bad destination name '\(dst)': \(problem)")
        }
        return 0
    }

    static let take: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, Int32) -> Int32 = { ctx, batch, max in
        host(ctx).take(into: batch, max: Int(max))
    }

    static let send: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int, UInt32, UnsafeRawPointer?, Int,
                                     UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 = { ctx, dst, dstLen, type, bytes, len, reason in
        let h = host(ctx)
        let name = string(dst, dstLen)
        let rc = precheck(h, name, len, reason)
        if rc != 0 { return rc }
        h.outbox.push(.send(dst: name, type: type, payload: data(bytes, len)))
        return 0
    }

    static let request: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int, UInt32, UnsafeRawPointer?, Int, Double,
                                        UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<Int>?,
                                        UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 = { ctx, dst, dstLen, type, bytes, len, timeout, reply, replyLen, reason in
        let h = host(ctx)
        let name = string(dst, dstLen)
        let rc = precheck(h, name, len, reason)
        if rc != 0 { return rc }
        if name == h.node.config.name {
            return fail(reason, .refused, "a blocking dagent.request to this node itself ('\(name)') would wait for the plugin thread it blocks; use `await dagent.arequest(...)`")
        }
        final class Box: @unchecked Sendable { var result: Result<DataMessage, DAgentError>? }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        h.outbox.push(.request(dst: name, type: type, payload: data(bytes, len), timeout: timeout, waiter: .message { r in
            box.result = r
            done.signal()
        }))
        if done.wait(timeout: .now() + timeout + 5) == .timedOut {
            return fail(reason, .timeout, "request to '\(name)' (type \(type)) got no answer within \(timeout)s")
        }
        switch box.result! {
        case .success(let answer):
            let n = answer.payload.readableBytes
            let out = malloc(Swift.max(n, 1))!
            answer.payload.withUnsafeReadableBytes { p in if n > 0 { out.copyMemory(from: p.baseAddress!, byteCount: n) } }
            reply?.pointee = out
            replyLen?.pointee = n
            return 0
        case .failure(let error):
            return fail(reason, error.code, error.reason)
        }
    }

    static let requestAsync: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int, UInt32, UnsafeRawPointer?, Int, Double, UInt64,
                                             UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 = { ctx, dst, dstLen, type, bytes, len, timeout, token, reason in
        let h = host(ctx)
        let name = string(dst, dstLen)
        let rc = precheck(h, name, len, reason)
        if rc != 0 { return rc }
        h.outbox.push(.request(dst: name, type: type, payload: data(bytes, len), timeout: timeout, waiter: .message { [unowned h] r in
            switch r {
            case .success(let answer): h.post(.reply(token: token, code: 0, payload: answer.payload))   // no copy until Python's bytes
            case .failure(let error): h.post(.reply(token: token, code: Int32(error.code.rawValue), payload: ByteBuffer(string: error.reason)))
            }
        }))
        return 0
    }

    static let respond: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int, UInt32, UInt64, Int32, UnsafeRawPointer?, Int,
                                        UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 = { ctx, dst, dstLen, type, cookie, ok, bytes, len, reason in
        let h = host(ctx)
        let name = string(dst, dstLen)
        if ok != 0 && len > h.node.config.maxMessageBytes {
            return fail(reason, .tooLarge, "reply to '\(name)' is \(len) bytes, over max_message_bytes=\(h.node.config.maxMessageBytes)")
        }
        h.outbox.push(.respond(dst: name, type: type, cookie: cookie, ok: ok != 0, payload: data(bytes, len)))
        return 0
    }

    static let log: @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = { ctx, level, plugin, message in
        let h = host(ctx)
        let text = message.map { String(cString: $0) } ?? ""
        let name = plugin.map { String(cString: $0) } ?? ""
        var logger = h.logger
        if !name.isEmpty { logger[metadataKey: "plugin"] = "\(name)" }
        switch level {
        case ..<20: logger.debug("\(text)")
        case ..<30: logger.info("\(text)")
        case ..<40: logger.warning("\(text)")
        case ..<50: logger.error("\(text)")
        default: logger.critical("\(text)")
        }
    }

    static let isReady: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { ctx in
        ((try? host(ctx).node.isReady) ?? false) ? 1 : 0
    }

    static let control: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> UnsafeMutablePointer<CChar>? = { ctx, op, text in
        let h = host(ctx)
        let body = text.map { String(cString: $0) } ?? ""
        switch op.map({ String(cString: $0) }) ?? "" {
        case "status":
            h.stats.update(json: body)
        case "started":
            let obj = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
            h.finishStart(.success(obj?["summary"] as? String ?? ""))
        case "command_done":
            h.commandDone(json: body)
        case "report":
            guard let sink = h.onReport else {
                return strdup("this node keeps no metrics registry")
            }
            return strdup(sink(Data(body.utf8)).joined(separator: "\n"))
        case let op where op.hasPrefix("http_"):
            return strdup(h.httpControl(op, body))
        default:
            break
        }
        return nil
    }

    static let commandAnswer: @convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafePointer<CChar>?, Int, UnsafeRawPointer?, Int) -> Void = { ctx, token, text, textLen, bytes, len in
        let body = bytes.map { ByteBuffer(bytes: UnsafeRawBufferPointer(start: $0, count: len)) } ?? ByteBuffer()
        host(ctx).commandDone(token: token, ok: true, text: string(text, textLen), data: body)
    }

    static let handled: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<UInt64>?, Int32) -> Void = { ctx, counts, n in
        guard let counts else { return }
        let h = host(ctx)
        h.stats.addHandled(counts, Int(n))
        if let onHandled = h.onHandled { onHandled(h.stats.totalHandled) }
    }
}
