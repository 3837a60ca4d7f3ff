import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A route handler: answers one request on the connection's event loop
/// (or completes the future later, from any thread).
public typealias HTTPHandler = @Sendable (HTTPRequest, EventLoop) -> EventLoopFuture<HTTPResponse>

/// The routes of one listener: exact paths and path prefixes, each with its
/// methods and an owner (a module or plugin name, so a plugin's routes go
/// when it is unloaded). Safe to change from any thread while serving.
///
/// Matching: an exact route wins, then the longest prefix route. A path that
/// matches but not with this method is 405 with an `Allow` header; nothing
/// matching is 404. `HEAD` is served by a `GET` route, without the body.
public final class HTTPRouter: Sendable {
    /// One registered route.
    public struct Route: Sendable {
        public let path: String
        public let isPrefix: Bool
        /// Upper-case method names (`GET`, `POST`).
        public let methods: Set<String>
        public let owner: String
        let handler: HTTPHandler
    }

    /// What `match` found.
    public enum Match: Sendable {
        case handler(HTTPHandler, Route)
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    private let routes = NIOLockedValueBox<[Route]>([])

    public init() {}

    /// Adds a route. `path` is an exact path, or with `prefix: true` every
    /// path below it (`/static/` serves `/static/a/b.js`). Fails if the same
    /// path and kind is already taken by another method set's owner.
    public func add(_ path: String, methods: Set<String> = ["GET"], prefix: Bool = false,
                    owner: String, handler: @escaping HTTPHandler) throws(HTTPConfigError) {
        if let problem = HTTPPath.problem(withPrefix: path) { throw HTTPConfigError("route '\(path)' \(problem)") }
        if methods.isEmpty { throw HTTPConfigError("route '\(path)' has no methods") }
        let methods = Set(methods.map { $0.uppercased() })
        let route = Route(path: path, isPrefix: prefix, methods: methods, owner: owner, handler: handler)
        let clash: Route? = routes.withLockedValue { list in
            if let other = list.first(where: { $0.path == path && $0.isPrefix == prefix && !$0.methods.isDisjoint(with: methods) }) {
                return other
            }
            list.append(route)
            return nil
        }
        if let clash {
            let common = clash.methods.intersection(methods).sorted().joined(separator: ",")
            throw HTTPConfigError("route \(common) \(path)\(prefix ? "*" : "") is already served by '\(clash.owner)'")
        }
    }

    /// Removes every route of `owner`; returns how many went.
    @discardableResult
    public func removeAll(owner: String) -> Int {
        routes.withLockedValue { list in
            let before = list.count
            list.removeAll { $0.owner == owner }
            return before - list.count
        }
    }

    /// Removes the routes at `path` (exact or prefix) of `owner`.
    @discardableResult
    public func remove(_ path: String, prefix: Bool = false, owner: String) -> Bool {
        routes.withLockedValue { list in
            let before = list.count
            list.removeAll { $0.owner == owner && $0.path == path && $0.isPrefix == prefix }
            return list.count != before
        }
    }

    /// The routes now registered, for `dagent tree` and tests.
    public var all: [Route] { routes.withLockedValue { $0 } }

    /// Finds the handler for `method` at `path`.
    public func match(method: HTTPMethod, path: String) -> Match {
        let list = routes.withLockedValue { $0 }
        let name = method.rawValue
        let wanted = method == .HEAD ? "GET" : name
        func pick(_ candidates: [Route]) -> Match? {
            guard !candidates.isEmpty else { return nil }
            if let r = candidates.first(where: { $0.methods.contains(wanted) || $0.methods.contains(name) }) {
                return .handler(r.handler, r)
            }
            var allowed = Set(candidates.flatMap(\.methods))
            if allowed.contains("GET") { allowed.insert("HEAD") }
            return .methodNotAllowed(allowed: allowed.sorted())
        }
        if let m = pick(list.filter { !$0.isPrefix && $0.path == path }) { return m }
        let prefixes = list.filter { $0.isPrefix && Self.under(path, $0.path) }
        if let longest = prefixes.map(\.path.utf8.count).max(),
           let m = pick(prefixes.filter { $0.path.utf8.count == longest }) {
            return m
        }
        return .notFound
    }

    /// True when `path` is `prefix` or below it (`/a` covers `/a`, `/a/` and `/a/b`, not `/ab`).
    static func under(_ path: String, _ prefix: String) -> Bool {
        if prefix.hasSuffix("/") { return path.hasPrefix(prefix) || path + "/" == prefix }
        return path == prefix || path.hasPrefix(prefix + "/")
    }
}
