import Foundation
import Glibc
import DAgentRaft

/// Thin, throwing wrappers around the POSIX file calls the storage layer needs
/// (Glibc only; every failure becomes `DurableStorageError.io` naming call and path).
package enum FileIO {
    package static func fail(_ op: String, _ path: String) -> DurableStorageError {
        .io(operation: op, path: path, errno: errno)
    }

    package static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    /// Creates `path` (and missing parents); syncs the parent of every directory created.
    package static func ensureDirectory(_ path: String) throws {
        if exists(path) { return }
        // (Computed by hand: Foundation's deletingLastPathComponent traps on some
        // relative paths on Linux, e.g. "d".)
        let parent = parentDirectory(of: path)
        if !parent.isEmpty && parent != path { try ensureDirectory(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw fail("mkdir", path) }
        if !parent.isEmpty { try syncDirectory(parent) }
    }

    /// "a/b/c" → "a/b", "/a" → "/", "d" → "" (no parent to create).
    package static func parentDirectory(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "" }
        return slash == p.startIndex ? "/" : String(p[..<slash])
    }

    /// Sorted names in a directory.
    package static func list(_ dir: String) throws -> [String] {
        guard let d = opendir(dir) else { throw fail("opendir", dir) }
        defer { closedir(d) }
        var names: [String] = []
        while let ent = readdir(d) {
            let name = withUnsafePointer(to: ent.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    package static func readAll(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw fail("open", path) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw fail("fstat", path) }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 { if errno == EINTR { continue }; throw fail("read", path) }
            if n == 0 { break }
            done += n
        }
        if done < out.count { out.removeSubrange(done...) }
        return out
    }

    package static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset + done)) }
            if n < 0 { if errno == EINTR { continue }; throw fail("pwrite", path) }
            done += n
        }
    }

    package static func sync(_ fd: Int32, dataOnly: Bool, path: String) throws {
        let rc = dataOnly ? fdatasync(fd) : fsync(fd)
        if rc != 0 { throw fail(dataOnly ? "fdatasync" : "fsync", path) }
    }

    package static func syncDirectory(_ dir: String) throws {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw fail("open", dir) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw fail("fsync", dir) }
    }

    package static func rename(_ from: String, _ to: String) throws {
        if Glibc.rename(from, to) != 0 { throw fail("rename", from + " -> " + to) }
    }

    package static func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw fail("unlink", path) }
    }

    /// Truncates a file to `length` and syncs it.
    package static func truncate(_ path: String, to length: Int) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw fail("open", path) }
        defer { close(fd) }
        if ftruncate(fd, off_t(length)) != 0 { throw fail("ftruncate", path) }
        if fsync(fd) != 0 { throw fail("fsync", path) }
    }

    /// Atomically replaces `path` with `bytes`: write `path.tmp`, fsync it, rename it over
    /// `path`, fsync the directory. `beforeRename`/`afterRename` are crash-injection points.
    package static func writeAtomically(_ path: String, _ bytes: [UInt8],
                                beforeRename: () throws -> Void = {}, afterRename: () throws -> Void = {}) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw fail("open", tmp) }
        do {
            try writeAll(fd, bytes, at: 0, path: tmp)
            try sync(fd, dataOnly: false, path: tmp)
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        try beforeRename()
        try rename(tmp, path)
        let parent = parentDirectory(of: path)
        try syncDirectory(parent.isEmpty ? "." : parent)
        try afterRename()
    }
}

/// An open file that is only ever extended at its end (a WAL segment), with explicit sync.
package final class AppendFile {
    package let path: String
    private var fd: Int32
    /// Current length of the file (the offset of the next write).
    private(set) var size: Int

    package init(path: String) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CLOEXEC)
        if fd < 0 { throw FileIO.fail("open", path) }
        let end = lseek(fd, 0, SEEK_END)
        if end < 0 { let e = FileIO.fail("lseek", path); Glibc.close(fd); throw e }
        size = Int(end)
    }

    deinit { close() }

    package func append(_ bytes: [UInt8]) throws {
        try FileIO.writeAll(fd, bytes, at: size, path: path)
        size += bytes.count
    }

    package func sync(dataOnly: Bool) throws {
        try FileIO.sync(fd, dataOnly: dataOnly, path: path)
    }

    package func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}
