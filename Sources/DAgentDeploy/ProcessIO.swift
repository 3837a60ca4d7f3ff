import CDAgentProc
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An error of the process I/O layer, naming the path or program involved.
public struct DeployIOError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Starts supervised programs: own process group, stdin from /dev/null,
/// stdout and stderr appended to one log file, no inherited descriptors,
/// default signal dispositions (the agent ignores SIGTERM/SIGINT; its
/// children must not).
public enum ProcessSpawner {
    /// Returns the pid, or throws with the reason (program not found, cwd missing, ...).
    public static func spawn(argv: [String], env: [String: String], cwd: String, logPath: String, newSession: Bool = false) throws -> Int32 {
        guard var program = argv.first, !program.isEmpty else { throw DeployIOError("empty command") }
        if !program.contains("/") {
            let path = env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
            let candidates = path.split(separator: ":").map { "\($0)/\(program)" }
            guard let found = candidates.first(where: { (c: String) -> Bool in access(c, X_OK) == 0 }) else {
                throw DeployIOError("'\(program)' not found on PATH (\(path))")
            }
            program = found
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: cwd, isDirectory: &isDir), isDir.boolValue else {
            throw DeployIOError("working directory '\(cwd)' does not exist")
        }
        let fd = try LogFile.openForAppend(logPath)
        defer { close(fd) }
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnv: [UnsafeMutablePointer<CChar>?] = env.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = dagent_proc_spawn(program, &cArgs, &cEnv, cwd, fd, newSession ? 1 : 0, &pid)
        guard rc == 0 else { throw DeployIOError("cannot start '\(program)': \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Sends `signal` to the process group of `pid` (and to `pid` itself, in
    /// case it left its group). Returns false if neither exists any more.
    @discardableResult
    public static func signal(pid: Int32, _ signal: Int32) -> Bool {
        let group = kill(-pid, signal) == 0
        let me = kill(pid, signal) == 0
        return group || me
    }
}

/// Facts about a running process from /proc, to adopt it safely after a
/// restart of its supervisor (a pid may have been reused by then).
public enum ProcStat {
    /// The process's start time in clock ticks since boot (field 22 of
    /// /proc/PID/stat), nil if it does not exist.
    public static func startTicks(pid: Int32) -> UInt64? {
        guard let (state, ticks) = read(pid) else { return nil }
        return state == "Z" || state == "X" ? nil : ticks
    }

    /// True if `pid` is alive (not a zombie) and started at `startTicks`.
    public static func isAlive(pid: Int32, startTicks: UInt64) -> Bool {
        guard let (state, ticks) = read(pid) else { return false }
        return state != "Z" && state != "X" && ticks == startTicks
    }

    static func read(_ pid: Int32) -> (Character, UInt64)? {
        guard pid > 0, let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3); start time is field 22.
        guard fields.count > 19, let state = fields[0].first, let ticks = UInt64(fields[19]) else { return nil }
        return (state, ticks)
    }
}

/// A captured log file: appended to by the process, rotated by size with
/// copy-and-truncate (the process keeps its descriptor; a line written while
/// the copy runs may land in either file).
public struct LogFile: Sendable {
    public var path: String
    public var maxBytes: Int
    public var keep: Int

    public init(path: String, maxBytes: Int, keep: Int) {
        self.path = path
        self.maxBytes = maxBytes
        self.keep = keep
    }

    static func openForAppend(_ path: String) throws -> Int32 {
        let dir = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DeployIOError("cannot open log file '\(path)': \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Current size in bytes (0 if missing).
    public var size: Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    /// Rotates when the file is larger than `maxBytes`: PATH.1 … PATH.keep
    /// shift up, PATH is copied to PATH.1 and truncated. Returns true if rotated.
    @discardableResult
    public func rotateIfNeeded() -> Bool {
        guard size > maxBytes else { return false }
        let fm = FileManager.default
        if keep > 0 {
            try? fm.removeItem(atPath: "\(path).\(keep)")
            if keep > 1 {
                for i in stride(from: keep - 1, through: 1, by: -1) where fm.fileExists(atPath: "\(path).\(i)") {
                    try? fm.moveItem(atPath: "\(path).\(i)", toPath: "\(path).\(i + 1)")
                }
            }
            try? fm.copyItem(atPath: path, toPath: "\(path).1")
        }
        truncate(path, 0)
        return true
    }

    /// The last `lines` lines of the file at `path` (reads at most the last 256 KiB).
    public static func tail(path: String, lines: Int) -> String {
        guard lines > 0, let h = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? h.close() }
        let end = (try? h.seekToEnd()) ?? 0
        let start = end > 262_144 ? end - 262_144 : 0
        try? h.seek(toOffset: start)
        let data = (try? h.readToEnd()) ?? Data()
        var text = String(decoding: data, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        let all = text.split(separator: "\n", omittingEmptySubsequences: false)
        return all.suffix(lines).joined(separator: "\n")
    }
}

/// Writes a file atomically and durably: temp file, fsync, rename, fsync of the folder.
public enum DurableFile {
    public static func write(_ data: Data, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DeployIOError("cannot write '\(tmp)': \(String(cString: strerror(errno)))") }
        let ok = data.withUnsafeBytes { buf -> Bool in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
        let synced = fsync(fd) == 0
        close(fd)
        guard ok, synced else { throw DeployIOError("cannot write '\(tmp)': \(String(cString: strerror(errno)))") }
        guard rename(tmp, path) == 0 else { throw DeployIOError("cannot rename '\(tmp)': \(String(cString: strerror(errno)))") }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}

/// Clocks: monotonic seconds for the state machines, wall-clock seconds for
/// what outlives a process (start times in the state file).
public enum DeployClock {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static func wall() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
