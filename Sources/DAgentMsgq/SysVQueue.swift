import CDAgentIPC
import DAgentWire
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
import DAgentRouting
import DAgentLink
import Logging
#endif

/// A System V IPC call that failed: which call, on what, and errno.
public struct SysVError: Error, CustomStringConvertible, Equatable, Sendable {
    public var call: String
    public var errno: Int32
    public var detail: String

    public init(_ call: String, errno: Int32, _ detail: String) {
        self.call = call
        self.errno = errno
        self.detail = detail
    }

    public var description: String { "\(call) \(detail): \(String(cString: strerror(errno))) (errno \(errno))" }

    /// The object is gone (removed by its owner, e.g. the agent stopped).
    public var isRemoved: Bool { errno == EIDRM || errno == EINVAL }
}

/// The keys of the IPC objects an agent owns for one path (`ftok(path, proj)`).
public struct MsgqKeys: Equatable, Sendable, CustomStringConvertible {
    /// Leaves to the agent (message type = the sender's channel).
    public var up: key_t
    /// The agent and brothers to a leaf (message type = the receiver's channel).
    public var down: key_t
    /// The shared-memory name table.
    public var table: key_t

    package static let projUp: Int32 = 0x55     // 'U'
    package static let projDown: Int32 = 0x44   // 'D'
    package static let projTable: Int32 = 0x54  // 'T'

    /// Keys for `path`; with `create`, creates the path (an empty file, mode 0600) if missing.
    public static func forPath(_ path: String, create: Bool) throws -> MsgqKeys {
        if create && !FileManager.default.fileExists(atPath: path) {
            let fd = open(path, O_CREAT | O_WRONLY, 0o600)
            guard fd >= 0 else { throw SysVError("create", errno: errno, "msgq path '\(path)'") }
            close(fd)
        }
        func key(_ proj: Int32) throws -> key_t {
            let k = ftok(path, proj)
            guard k != -1 else { throw SysVError("ftok", errno: errno, "'\(path)'") }
            return k
        }
        return MsgqKeys(up: try key(projUp), down: try key(projDown), table: try key(projTable))
    }

    public var description: String {
        String(format: "up 0x%08x, down 0x%08x, table 0x%08x", UInt32(bitPattern: up), UInt32(bitPattern: down), UInt32(bitPattern: table))
    }
}

/// The system's message-queue limits (`kernel.msgmax`, `kernel.msgmnb`, `kernel.msgmni`).
public struct MsgqLimits: Sendable, Equatable {
    public var msgmax: Int
    public var msgmnb: Int
    public var msgmni: Int

    public static func read() -> MsgqLimits {
        func value(_ name: String, _ fallback: Int) -> Int {
            guard let text = try? String(contentsOfFile: "/proc/sys/kernel/\(name)", encoding: .utf8),
                  let v = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), v > 0 else { return fallback }
            return v
        }
        return MsgqLimits(msgmax: value("msgmax", 8192), msgmnb: value("msgmnb", 16384), msgmni: value("msgmni", 32000))
    }
}

/// One System V message queue, by id. Thin and stateless: every call is one syscall.
public struct SysVQueue: Sendable, Equatable {
    public let id: Int32
    public let key: key_t

    /// Opens an existing queue.
    public static func open(key: key_t) throws -> SysVQueue {
        let id = msgget(key, 0)
        guard id >= 0 else { throw SysVError("msgget", errno: errno, String(format: "key 0x%08x", UInt32(bitPattern: key))) }
        return SysVQueue(id: id, key: key)
    }

    /// Creates a new queue with mode 0600; fails with EEXIST if one exists.
    public static func create(key: key_t) throws -> SysVQueue {
        let id = msgget(key, IPC_CREAT | IPC_EXCL | 0o600)
        guard id >= 0 else { throw SysVError("msgget(IPC_CREAT)", errno: errno, String(format: "key 0x%08x", UInt32(bitPattern: key))) }
        return SysVQueue(id: id, key: key)
    }

    /// Whether a queue exists for `key`, and its id.
    public static func existing(key: key_t) -> Int32? {
        let id = msgget(key, 0)
        return id >= 0 ? id : nil
    }

    /// msgsnd of a message whose first 8 bytes are its mtype (`MsgqOutMessage.setType`).
    /// Returns 0 or -errno (-EAGAIN when full and `wait` is false).
    @inline(__always)
    public func send(_ message: ByteBuffer, wait: Bool) -> Int32 {
        let size = message.readableBytes - MsgqWire.mtypeBytes
        return message.withUnsafeReadableBytes { p in
            while true {
                let rc = dagent_msgsnd(id, p.baseAddress!, size, wait ? 0 : 1)
                if rc != -EINTR { return rc }
            }
        }
    }

    /// Purges every message of `mtype` (msgrcv with IPC_NOWAIT until none is left). Returns how many.
    public func purge(mtype: Int) -> Int {
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        defer { scratch.deallocate() }
        return Int(dagent_msgq_purge(id, mtype, scratch, 64 - 8))
    }

    /// Bytes queued, messages queued and the byte limit (nil if the queue is gone).
    public func stat() -> (bytes: UInt64, messages: UInt64, limit: UInt64)? {
        var b: UInt64 = 0, n: UInt64 = 0, q: UInt64 = 0
        guard dagent_msgq_stat(id, &b, &n, &q) == 0 else { return nil }
        return (b, n, q)
    }

    /// Sets the byte limit; returns 0 or -errno (EPERM above kernel.msgmnb without CAP_SYS_RESOURCE).
    public func setLimit(_ bytes: Int) -> Int32 { dagent_msgq_set_qbytes(id, UInt64(bytes)) }

    /// Removes the queue (blocked readers and writers wake with EIDRM).
    @discardableResult
    public func remove() -> Int32 { dagent_msgq_remove(id) }
}
