// The authoritative name directory of the root group: name → (session, root replica, agent).
//
// A name is held by one session at a time. Registering again with the same session moves
// (or reclaims) it; another session is refused with `nameTaken(holder)`. Every change bumps
// the directory epoch and stamps the changed entry with it, so routing caches can tell a
// moved name from a stale one. Directory changes do not touch the key space, its revision
// or the watch history: the apply result (`registered`/`released`) reports them.

/// Who holds a routable name.
public struct DirectoryEntry: Equatable, Sendable {
    /// The registered name.
    public var name: String
    /// The session that holds it; presenting it again reclaims or moves the name.
    public var session: UInt64
    /// The root replica the owning agent is attached to.
    public var replica: UInt64
    /// The agent that owns the name.
    public var agent: String
    /// The directory epoch at which this registration was made or last moved.
    public var epoch: UInt64

    /// Creates an entry.
    public init(name: String, session: UInt64, replica: UInt64, agent: String, epoch: UInt64) {
        self.name = name
        self.session = session
        self.replica = replica
        self.agent = agent
        self.epoch = epoch
    }
}

/// The name directory: lookups are public, changes go through `KVStateMachine` commands.
///
/// Names are keyed by their UTF-8 bytes (not by Unicode-equivalence), so every replica and
/// Swift version agrees on which names are the same.
public struct DirectoryTable: Sendable {
    private var entries: [[UInt8]: DirectoryEntry] = [:]
    /// Incremented by every registration, move or release.
    public package(set) var epoch: UInt64 = 0

    package init() {}

    /// Number of registered names.
    public var count: Int { entries.count }

    /// The holder of `name`, if registered.
    public func lookup(_ name: String) -> DirectoryEntry? { entries[Array(name.utf8)] }

    /// Every entry, in name byte order (what a snapshot writes).
    public var all: [DirectoryEntry] {
        entries.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.value)
    }

    /// Entries held by an agent or hosted on a replica, in name byte order.
    public func entries(heldBy owner: DirectoryOwner) -> [DirectoryEntry] {
        all.filter { entry in
            switch owner {
            case let .agent(agent): return entry.agent == agent
            case let .replica(replica): return entry.replica == replica
            }
        }
    }

    package mutating func set(_ entry: DirectoryEntry) { entries[Array(entry.name.utf8)] = entry }

    package mutating func remove(_ name: String) { entries.removeValue(forKey: Array(name.utf8)) }
}

extension KVStateMachine {
    package mutating func applyRegisterName(name: String, session: UInt64, replica: UInt64, agent: String) -> StateResult {
        if let f = checkText(name, what: "name") ?? checkText(agent, what: "agent") { return .failed(f) }
        let previous = directory.lookup(name)
        if let previous {
            guard previous.session == session else { return .failed(.nameTaken(name: name, holder: previous)) }
            if previous.replica == replica, previous.agent == agent {
                return .ok(.registered(previous, previous: previous))  // idempotent re-register
            }
        }
        directory.epoch += 1
        let entry = DirectoryEntry(name: name, session: session, replica: replica, agent: agent,
                                   epoch: directory.epoch)
        directory.set(entry)
        return .ok(.registered(entry, previous: previous))
    }

    package mutating func applyReleaseName(name: String, session: UInt64) -> StateResult {
        guard let holder = directory.lookup(name) else { return .failed(.nameNotFound(name: name)) }
        guard holder.session == session else { return .failed(.sessionMismatch(name: name, holder: holder)) }
        directory.epoch += 1
        directory.remove(name)
        return .ok(.released([holder]))
    }

    package mutating func applyReleaseAll(for owner: DirectoryOwner) -> StateResult {
        let released = directory.entries(heldBy: owner)
        guard !released.isEmpty else { return .ok(.released([])) }
        directory.epoch += 1
        for entry in released { directory.remove(entry.name) }
        return .ok(.released(released))
    }
}
