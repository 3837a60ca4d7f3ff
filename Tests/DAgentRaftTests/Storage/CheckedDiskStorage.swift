import DAgentRaft
import Foundation
@testable import DAgentRaftStorage
import DAgentTestSupport

/// A `DiskStorage` wrapper for simulations that checks durability across crashes: it
/// mirrors every acknowledged write into an in-memory shadow and remembers the write in
/// flight. After a crash, `reopen` requires the recovered state to equal the shadow
/// (nothing acknowledged lost) or the shadow plus the interrupted write (it completed).
final class CheckedDiskStorage: RaftStorage {
    let directory: String
    let options: DiskStorageOptions
    private(set) var disk: DiskStorage
    private var acked: MemoryStorage
    private var inflight: ((MemoryStorage) throws -> Void)?

    private init(directory: String, options: DiskStorageOptions, disk: DiskStorage) throws {
        self.directory = directory
        self.options = options
        self.disk = disk
        self.acked = try Self.clone(StorageState(disk))
    }

    static func open(directory: String, options: DiskStorageOptions) throws -> CheckedDiskStorage {
        try CheckedDiskStorage(directory: directory, options: options, disk: DiskStorage(directory: directory, options: options))
    }

    /// Reopens the directory after a crash of the process that used `self`, checking durability.
    func reopen() throws -> CheckedDiskStorage {
        disk.close()
        let fresh = try DiskStorage(directory: directory, options: options)
        let got = try StorageState(fresh)
        let before = try StorageState(acked)
        var allowed = [before]
        if let op = inflight {
            let after = try Self.clone(before)
            try op(after)
            allowed.append(try StorageState(after))
        }
        guard allowed.contains(got) else {
            throw SafetyViolation(message: "durability violated in \(directory): recovered \(got), acknowledged \(before)" +
                                  (allowed.count > 1 ? " or with the interrupted write \(allowed[1])" : ""))
        }
        return try CheckedDiskStorage(directory: directory, options: options, disk: fresh)
    }

    static func clone(_ s: StorageState) throws -> MemoryStorage {
        let m = MemoryStorage()
        try m.applySnapshot(s.snapshot)
        try m.append(s.entries)
        try m.setHardState(s.hardState)
        return m
    }

    /// Runs a write on disk; only once it returned is it mirrored into the shadow.
    private func write(_ op: @escaping (any RaftStorage) throws -> Void) throws {
        inflight = { try op($0) }
        try op(disk)
        try op(acked)
        inflight = nil
    }

    func hardState() throws -> HardState { try disk.hardState() }
    func entries(from lo: UInt64, to hi: UInt64, maxBytes: UInt64) throws -> [Entry] {
        try disk.entries(from: lo, to: hi, maxBytes: maxBytes)
    }
    func term(at index: UInt64) throws -> UInt64 { try disk.term(at: index) }
    func firstIndex() throws -> UInt64 { try disk.firstIndex() }
    func lastIndex() throws -> UInt64 { try disk.lastIndex() }
    func snapshot() throws -> Snapshot { try disk.snapshot() }

    func append(_ entries: [Entry]) throws { try write { try $0.append(entries) } }
    func setHardState(_ state: HardState) throws { try write { try $0.setHardState(state) } }
    func applySnapshot(_ snapshot: Snapshot) throws { try write { try $0.applySnapshot(snapshot) } }
    func compact(with snapshot: Snapshot) throws { try write { try $0.compact(with: snapshot) } }
    func save(_ ready: Ready) throws { try write { try $0.save(ready) } }
}
