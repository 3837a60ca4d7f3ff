import NIOCore
import NIOHTTP1

/// One complete HTTP request as a route handler sees it: the head and the
/// whole body (bounded by `HTTPLimits.maxBodyBytes`).
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The path without the query, percent-decoded is *not* applied (routes match raw paths).
    public var path: String
    /// The raw query string after `?` ("" if none).
    public var query: String
    public var headers: HTTPHeaders
    public var body: ByteBuffer
    /// The peer's address, for logs.
    public var remote: String

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer(), remote: String = "") {
        self.method = method
        if let q = uri.firstIndex(of: "?") {
            path = String(uri[..<q])
            query = String(uri[uri.index(after: q)...])
        } else {
            path = uri
            query = ""
        }
        self.headers = headers
        self.body = body
        self.remote = remote
    }

    /// The query parameters, percent-decoded (`+` is a space); later keys win.
    public var queryItems: [String: String] {
        var out: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = HTTPPath.percentDecode(String(kv[0]).replacingOccurrences(of: "+", with: " ")) ?? String(kv[0])
            let v = kv.count > 1 ? (HTTPPath.percentDecode(String(kv[1]).replacingOccurrences(of: "+", with: " ")) ?? String(kv[1])) : ""
            out[k] = v
        }
        return out
    }
}

/// What a route handler answers: a status, headers and a body.
/// `Content-Length` is set by the server.
public struct HTTPResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus = .ok, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A text body (`text/plain; charset=utf-8` unless `contentType` says otherwise).
    public static func text(_ text: String, status: HTTPResponseStatus = .ok,
                            contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": contentType], body: ByteBuffer(string: text))
    }

    /// An error page: the status line's reason and one line saying why.
    public static func error(_ status: HTTPResponseStatus, _ why: String) -> HTTPResponse {
        .text("\(status.code) \(status.reasonPhrase): \(why)\n", status: status)
    }
}

/// The named limits of one HTTP listener. Every one is a config option.
public struct HTTPLimits: Sendable, Equatable {
    /// `http_max_header_bytes`: the request line and headers together; past it, 431.
    public var maxHeaderBytes: Int = 16 * 1024
    /// `http_max_body_bytes`: a request body; past it, 413 and the connection is closed.
    public var maxBodyBytes: Int = 1024 * 1024
    /// `http_max_connections`: open connections; past it a new one gets 503 and is closed.
    public var maxConnections: Int = 1024
    /// `http_idle_timeout`: seconds a keep-alive connection may stay idle.
    public var idleTimeout: Double = 60
    /// `http_handler_timeout`: seconds a route (a Python one included) has to answer; then 504.
    public var handlerTimeout: Double = 10

    public init() {}

    /// Checks each limit; the message names the option.
    public func validate() throws(HTTPConfigError) {
        if maxHeaderBytes < 1024 { throw HTTPConfigError("http_max_header_bytes must be >= 1024 (got \(maxHeaderBytes))") }
        if maxHeaderBytes > 80 * 1024 {
            throw HTTPConfigError("http_max_header_bytes must be <= 81920, the HTTP parser's own ceiling (got \(maxHeaderBytes))")
        }
        if maxBodyBytes < 0 { throw HTTPConfigError("http_max_body_bytes must be >= 0 (got \(maxBodyBytes))") }
        if maxConnections < 1 { throw HTTPConfigError("http_max_connections must be >= 1 (got \(maxConnections))") }
        if idleTimeout <= 0 { throw HTTPConfigError("http_idle_timeout must be > 0 (got \(idleTimeout))") }
        if handlerTimeout <= 0 { throw HTTPConfigError("http_handler_timeout must be > 0 (got \(handlerTimeout))") }
    }
}

/// A bad HTTP listener setting or registration; the text names the value.
public struct HTTPConfigError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
