import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves the files of one directory under a URL prefix, read on NIO's
/// thread pool. A request may only reach files inside the directory: the
/// path is percent-decoded, `.`/`..` segments, backslashes and NUL bytes are
/// refused (400), and the resolved real path (symlinks followed) must stay
/// under the directory's real path (403). A directory serves its
/// `index.html`. Files over `maxFileBytes` are refused (413 would be wrong:
/// the request is fine) with 500 and a message naming the limit.
public struct HTTPStaticDirectory: Sendable {
    public let prefix: String
    public let directory: String
    public let maxFileBytes: Int

    /// Checks that `directory` exists; `prefix` must start with `/`.
    public init(prefix: String, directory: String, maxFileBytes: Int = 64 * 1024 * 1024) throws(HTTPConfigError) {
        if let problem = HTTPPath.problem(withPrefix: prefix) { throw HTTPConfigError("static prefix '\(prefix)' \(problem)") }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw HTTPConfigError("static directory '\(directory)' for '\(prefix)' does not exist or is not a directory")
        }
        guard let real = Self.realPath(directory) else {
            throw HTTPConfigError("static directory '\(directory)' cannot be resolved")
        }
        self.prefix = prefix
        self.directory = real
        self.maxFileBytes = maxFileBytes
    }

    /// Registers this directory on `router` (GET and HEAD under `prefix`).
    public func register(on router: HTTPRouter, owner: String) throws(HTTPConfigError) {
        let me = self
        try router.add(prefix, methods: ["GET"], prefix: true, owner: owner) { request, loop in
            me.serve(request, on: loop)
        }
    }

    /// What `path` (the URL path, still percent-encoded) maps to, or why it may not be served.
    public func resolve(_ path: String) -> Resolved {
        guard path.hasPrefix(prefix) || path + "/" == prefix else { return .failure(.error(.notFound, "\(path) is not under \(prefix)")) }
        let rest = path.count > prefix.count ? String(path.dropFirst(prefix.count)) : ""
        guard let decoded = HTTPPath.percentDecode(rest) else {
            return .failure(.error(.badRequest, "malformed percent-escape or non-UTF-8 bytes in the path"))
        }
        if decoded.contains("\0") || decoded.contains("\\") {
            return .failure(.error(.badRequest, "NUL or backslash in the path"))
        }
        let segments = decoded.split(separator: "/", omittingEmptySubsequences: true)
        if segments.contains(where: { $0 == ".." || $0 == "." }) {
            return .failure(.error(.badRequest, "'.' and '..' segments are not allowed in static paths"))
        }
        var candidate = directory + "/" + segments.joined(separator: "/")
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir) else {
            return .failure(.error(.notFound, "no file \(path)"))
        }
        if isDir.boolValue { candidate += "/index.html" }
        guard let real = Self.realPath(candidate) else { return .failure(.error(.notFound, "no file \(path)")) }
        guard real == directory || real.hasPrefix(directory + "/") else {
            return .failure(.error(.forbidden, "\(path) resolves outside the static directory"))
        }
        return .success(real)
    }

    /// A file to serve, or the answer that refuses the path.
    public enum Resolved: Sendable {
        case success(String)
        case failure(HTTPResponse)
    }

    func serve(_ request: HTTPRequest, on loop: EventLoop) -> EventLoopFuture<HTTPResponse> {
        let file: String
        switch resolve(request.path) {
        case .failure(let response): return loop.makeSucceededFuture(response)
        case .success(let f): file = f
        }
        let limit = maxFileBytes
        return NIOThreadPool.singleton.runIfActive(eventLoop: loop) { () -> HTTPResponse in
            let attrs = try? FileManager.default.attributesOfItem(atPath: file)
            let size = (attrs?[.size] as? NSNumber)?.intValue ?? 0
            if size > limit {
                return .error(.internalServerError, "\(request.path) is \(size) bytes, over the static file limit of \(limit) bytes")
            }
            guard let data = FileManager.default.contents(atPath: file) else {
                return .error(.notFound, "cannot read \(request.path)")
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: Self.contentType(file))
            headers.add(name: "Cache-Control", value: "no-cache")
            return HTTPResponse(status: .ok, headers: headers, body: ByteBuffer(bytes: data))
        }
    }

    static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    static let types: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
        "mjs": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "json": "application/json",
        "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
        "ico": "image/x-icon", "txt": "text/plain; charset=utf-8", "map": "application/json", "wasm": "application/wasm",
        "woff2": "font/woff2",
    ]

    /// The Content-Type for a file name, by extension.
    public static func contentType(_ file: String) -> String {
        let ext = file.split(separator: ".").last.map { $0.lowercased() } ?? ""
        return types[ext] ?? "application/octet-stream"
    }
}
