#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One fuzz target: a decoder and the contract its output must keep. `run` returns normally
/// when the contract holds (a value, or a thrown error for bad input); a broken contract is a
/// crash (`FuzzCheck.fail`), which libFuzzer saves as a reproducer.
struct FuzzTarget {
    let name: String
    let summary: String
    /// Seed inputs made with the real encoders (`scripts/fuzz --seed` writes them to fuzz/corpus/NAME/).
    let seeds: () -> [(name: String, bytes: [UInt8])]
    let run: (FuzzInput) -> Void
}

/// The input of one run, with helpers that carve structure out of it.
struct FuzzInput {
    let bytes: [UInt8]
    init(_ raw: UnsafeRawBufferPointer) { bytes = Array(raw) }
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Splits `bytes[from...]` into pieces, each `[u8 length][length bytes]` (a short last piece is kept).
    func pieces(from start: Int = 0) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var i = start
        while i < bytes.count {
            let n = Int(bytes[i])
            i += 1
            let end = min(bytes.count, i + n)
            out.append(Array(bytes[i..<end]))
            i = end
        }
        return out
    }

    /// Splits with a 16-bit little-endian length per piece (for larger pieces).
    func pieces16(from start: Int = 0) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var i = start
        while i + 1 < bytes.count {
            let n = Int(bytes[i]) | Int(bytes[i + 1]) << 8
            i += 2
            let end = min(bytes.count, i + n)
            out.append(Array(bytes[i..<end]))
            i = end
        }
        return out
    }

    /// The byte at `i`, or 0 past the end.
    func byte(_ i: Int) -> UInt8 { i < bytes.count ? bytes[i] : 0 }
}

/// Contract checks. A failure prints what broke and aborts: libFuzzer reports the deadly
/// signal and writes the input as `crash-…`.
enum FuzzCheck {
    static func fail(_ what: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
        fputs("dagent-fuzz: contract broken at \(file):\(line): \(what)\n", stderr)
        abort()
    }

    static func require(_ ok: Bool, _ what: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
        if !ok { fail(what(), file: file, line: line) }
    }

    static func equal<T: Equatable>(_ a: T, _ b: T, _ what: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
        if a != b { fail("\(what()): \(a) != \(b)", file: file, line: line) }
    }
}

/// Writes every target's seeds to `DIR/TARGET/NAME` (replacing the target's directory).
enum FuzzSeeds {
    static func write(to dir: String) -> Bool {
        let fm = FileManager.default
        do {
            for t in FuzzTargets.all {
                let d = dir + "/" + t.name
                try? fm.removeItem(atPath: d)
                try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
                for s in t.seeds() {
                    try Data(s.bytes).write(to: URL(fileURLWithPath: d + "/" + s.name))
                }
                print("\(t.name): \(t.seeds().count) seeds")
            }
            return true
        } catch {
            fputs("dagent-fuzz: cannot write seeds to \(dir): \(error)\n", stderr)
            return false
        }
    }
}
