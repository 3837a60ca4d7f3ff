import Foundation
import XCTest

/// A test case with a fresh temporary directory (real files, real fsync), removed afterwards.
open class TempDirTestCase: XCTestCase {
    public private(set) var tmp = ""

    open override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "dagent-raft-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    open override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: tmp)
    }
}

/// Small file helpers for tests that inspect or damage what was written to disk.
public enum Disk {
    public static func read(_ path: String) -> [UInt8] {
        Array(FileManager.default.contents(atPath: path) ?? Data())
    }

    public static func write(_ path: String, _ bytes: [UInt8]) {
        precondition(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
    }

    public static func size(_ path: String) -> Int { read(path).count }

    public static func flipByte(_ path: String, at offset: Int) {
        var b = read(path)
        b[offset] ^= 0x5A
        write(path, b)
    }

    public static func list(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    public static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
}
