import DAgentWire

/// Identifies one link of a node (a TCP connection, or a leaf's message-queue channel).
public typealias LinkID = UInt64

/// Where a name in this node's subtree is reached from here.
public struct RouteEntry: Equatable, Sendable {
    /// The child link the name sits behind.
    public var link: LinkID
    public var session: UInt64
    /// Registration epoch at this node: bumped every time the name is
    /// (re)registered or moves to another link, so a stale cached route is
    /// recognisable.
    public var epoch: UInt64
    /// Name of the node the holder registered with.
    public var parent: String
    public var role: Dagent_NodeRole
}

/// The router cache: name → next hop, learned from registrations that
/// propagate upward, each entry stamped with its registration epoch.
///
/// A lookup is one hash probe. Entries are invalidated when their link drops
/// (`removeAll(via:)`) or when the name moves to another link (`upsert` with a
/// different link). Names not in the table are not in this subtree and are
/// routed up.
public struct RouteTable: Sendable {
    private var entries: [String: RouteEntry] = [:]
    private var byLink: [LinkID: Set<String>] = [:]
    private var nextEpoch: UInt64 = 1
    /// Bumped by every change; drivers that mirror the table (the agent's
    /// shared-memory name table) resync when it moves.
    public private(set) var version: UInt64 = 0

    public init() {}

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }
    public subscript(name: String) -> RouteEntry? { entries[name] }
    public var allEntries: [String: RouteEntry] { entries }

    /// Names currently routed through `link`.
    public func names(via link: LinkID) -> Set<String> { byLink[link] ?? [] }

    /// Inserts or moves a name. Returns the previous entry if there was one.
    @discardableResult
    public mutating func upsert(_ name: String, link: LinkID, session: UInt64, parent: String,
                                role: Dagent_NodeRole) -> RouteEntry? {
        let old = entries[name]
        version &+= 1
        if let old, old.link != link {
            byLink[old.link]?.remove(name)
            if byLink[old.link]?.isEmpty == true { byLink[old.link] = nil }
        }
        let epoch = nextEpoch
        nextEpoch += 1
        entries[name] = RouteEntry(link: link, session: session, epoch: epoch, parent: parent, role: role)
        byLink[link, default: []].insert(name)
        return old
    }

    /// Removes `name` if (and only if) it is routed through `link`.
    @discardableResult
    public mutating func remove(_ name: String, ifVia link: LinkID) -> RouteEntry? {
        guard let entry = entries[name], entry.link == link else { return nil }
        version &+= 1
        entries[name] = nil
        byLink[link]?.remove(name)
        if byLink[link]?.isEmpty == true { byLink[link] = nil }
        return entry
    }

    /// Drops every route through `link` (the link went down). Returns the names.
    public mutating func removeAll(via link: LinkID) -> [String] {
        guard let names = byLink.removeValue(forKey: link) else { return [] }
        version &+= 1
        for name in names { entries[name] = nil }
        return names.sorted()
    }

    /// The table as wire records, for re-registration and `dagent tree`.
    public func records() -> [Dagent_NameRecord] {
        entries.keys.sorted().map { name in
            let e = entries[name]!
            var r = Dagent_NameRecord()
            r.name = name
            r.session = e.session
            r.epoch = e.epoch
            r.parent = e.parent
            r.role = e.role
            return r
        }
    }
}
