import DAgentHTTP
import DAgentRouting
import Foundation
import NIOCore
import NIOHTTP1

/// `dagent.http.route` and `dagent.http.static` for plugins: the plugin thread
/// registers through `control`, and each request to a Python route becomes one
/// host command (`{"op":"http", ...}`) that the plugin thread answers with the
/// status, headers and body. Python runs once per request, never on the
/// event loop; a plugin that does not answer within `http_handler_timeout`
/// gets the client a 504.
extension PluginHost {
    /// Handles the `http_*` control ops; returns an error text, or "" when done.
    func httpControl(_ op: String, _ body: String) -> String {
        guard let server = node.http else {
            return "node '\(node.config.name)' has no HTTP listener: set http: tcp://HOST:PORT in its config or start it with --http"
        }
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] else {
            return "bad \(op) request: not a JSON object"
        }
        let owner = "plugin:" + (obj["owner"] as? String ?? "")
        do {
            switch op {
            case "http_route":
                let path = obj["path"] as? String ?? ""
                let methods = Set((obj["methods"] as? [String]) ?? ["GET"])
                let prefix = obj["prefix"] as? Bool ?? false
                try server.router.add(path, methods: methods, prefix: prefix, owner: owner) { [weak self] request, loop in
                    guard let self else { return loop.makeSucceededFuture(.error(.serviceUnavailable, "plugin host stopped")) }
                    return self.httpDispatch(request, owner: owner, route: path, on: loop)
                }
            case "http_static":
                let dir = try HTTPStaticDirectory(prefix: obj["prefix"] as? String ?? "", directory: obj["dir"] as? String ?? "")
                try dir.register(on: server.router, owner: owner)
            case "http_drop":
                server.router.removeAll(owner: owner)
            default:
                return "unknown http control op '\(op)'"
            }
        } catch {
            return "\(error)"
        }
        return ""
    }

    func httpDispatch(_ request: HTTPRequest, owner: String, route: String, on loop: EventLoop) -> EventLoopFuture<HTTPResponse> {
        let promise = loop.makePromise(of: HTTPResponse.self)
        var headers: [String: String] = [:]
        for (k, v) in request.headers { headers[k.lowercased()] = headers[k.lowercased()].map { $0 + ", " + v } ?? v }
        let cmd: [String: Any] = [
            "op": "http", "route": route, "method": request.method.rawValue, "path": request.path,
            "query": request.query, "headers": headers, "body": Data(request.body.readableBytesView).base64EncodedString(),
        ]
        command(cmd, answer: { result, body in
            switch result {
            case .failure(let error):
                promise.succeed(.error(.internalServerError, error.reason))
            case .success(let text):
                promise.succeed(Self.httpResponse(fromJSON: text, body: body))
            }
        })
        return promise.futureResult
    }

    /// `{"status": 200, "headers": {...}}` and the body's bytes from the plugin thread
    /// (`command_answer`), or `{"status": ..., "headers": ..., "body": BASE64}` alone (`command_done`).
    static func httpResponse(fromJSON text: String, body bytes: ByteBuffer? = nil) -> HTTPResponse {
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            return .error(.internalServerError, "the plugin's answer was not understood")
        }
        let code = (obj["status"] as? NSNumber)?.intValue ?? 200
        var headers = HTTPHeaders()
        for (k, v) in (obj["headers"] as? [String: String]) ?? [:] { headers.add(name: k, value: v) }
        if let bytes {
            return HTTPResponse(status: HTTPResponseStatus(statusCode: code), headers: headers, body: bytes)
        }
        let body = Data(base64Encoded: obj["body"] as? String ?? "") ?? Data()
        return HTTPResponse(status: HTTPResponseStatus(statusCode: code), headers: headers, body: ByteBuffer(bytes: body))
    }
}
