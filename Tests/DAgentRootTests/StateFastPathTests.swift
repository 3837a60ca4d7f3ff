import DAgentNode
import DAgentState
import Foundation
import XCTest
@testable import DAgentRoot

/// The `@state` paths written without Foundation (`StateRequest.parseCommon`,
/// `StateAnswerJSON`) give the answers of the Codable ones, and never trap.
final class StateFastPathTests: XCTestCase {
    /// What the general path makes of a body: a request, or the error it names.
    enum Parsed: Equatable {
        case success(StateRequest)
        case failure(String)
    }

    func general(_ bytes: [UInt8], stream: UInt64 = 1) -> Parsed {
        do { return .success(try StateRequest.parse(Data(bytes), nowMs: 1000, servingStream: stream)) } catch {
            return .failure("\(error)")
        }
    }

    func fast(_ bytes: [UInt8], stream: UInt64 = 1) -> StateRequest? {
        StateRequest.parseCommon(Data(bytes), servingStream: stream)
    }

    static let taken: [String] = [
        #"{"op":"put","key":"k","value":"v"}"#,
        #"{"value":"v","key":"k","op":"put"}"#,
        #"{"op": "put", "key": "bench/0/1", "value": "vvvv"}"#,                 // Python's json.dumps
        #"{"op":"put","key":"bench\/0\/1","value":"v"}"#,                       // JSONSerialization's
        " \t\r\n{ \"op\" :\"put\" ,\n\"key\":\"k\", \"value\" : \"\" } \n",
        #"{"op":"put","key":"","value":""}"#,
        #"{"op":"put","key":"k","value":"v","lease":7}"#,
        #"{"op":"put","key":"k","value":"v","lease":0}"#,                       // 0 means no lease
        #"{"op":"put","key":"k","value":"v","lease":9999999999999999999}"#,     // 19 digits
        #"{"op":"put","key":"k","value":"v","stream":1}"#,
        #"{"op":"put","key":"a\"b\\c\/d","value":"\b\f\n\r\t"}"#,
        #"{"op":"put","key":"\u00e9\u00E9","value":"\u0000\u001f\u007f"}"#,
        #"{"op":"put","key":"\ud83c\udf89","value":"\uD83D\uDE00x"}"#,          // surrogate pairs
        #"{"op":"put","key":"héllo ✓ 🎉","value":"日本語"}"#,
        #"{"op":"put","key":"k","value":"\#(String(repeating: "x", count: 5000))"}"#,
        #"{"op":"get","key":"k"}"#,
        #"{"key":"bench/warm/3/17","op":"get"}"#,
        #"{"op":"get","key":"k","stream":1}"#,
        #"{"op":"get","key":"k","value":"ignored","lease":3}"#,                 // the general path ignores both
        #"{"op":"del","key":"k"}"#,
        #"{"op":"del","key":"k","value":"x"}"#,
    ]

    static let left: [String] = [
        #"{"op":"cas","key":"k","value":"v","expect_absent":true}"#,           // another op
        #"{"op":"range","prefix":"p"}"#,
        #"{"op":"delprefix","prefix":"p"}"#,
        #"{"op":"status"}"#,
        #"{"op":"txn","compare":[],"success":[{"op":"put","key":"k","value":"v"}]}"#,
        #"{"op":"frobnicate","key":"k"}"#,
        #"{"key":"k","value":"v"}"#,                                            // no op
        #"{"op":"put","key":"k"}"#,                                             // no value
        #"{"op":"put","value":"v"}"#,                                           // no key
        #"{"op":"get"}"#,
        #"{"op":"put","key":"k","value":"v","extra":"x"}"#,                     // a member it does not know
        #"{"op":"put","key":"k","value":"v","prefix":"p"}"#,
        #"{"op":"put","key":"k","value":"v","key":"j"}"#,                       // a duplicate
        #"{"op":"put","op":"get","key":"k","value":"v"}"#,
        #"{"op":"put","key":7,"value":"v"}"#,                                   // not a string
        #"{"op":"put","key":"k","value":null}"#,
        #"{"op":"put","key":"k","value":["v"]}"#,
        #"{"op":"put","key":"k","value":"v","lease":"7"}"#,                     // not a number
        #"{"op":"put","key":"k","value":"v","lease":-1}"#,
        #"{"op":"put","key":"k","value":"v","lease":1.0}"#,
        #"{"op":"put","key":"k","value":"v","lease":1e3}"#,
        #"{"op":"put","key":"k","value":"v","lease":07}"#,
        #"{"op":"put","key":"k","value":"v","lease":18446744073709551615}"#,   // 20 digits
        #"{"op":"put","key":"k","value":"v","lease":99999999999999999999}"#,
        #"{"op":"put","key":"k","value":"v","lease":null}"#,
        #"{"op":"get","key":"k","stream":2}"#,                                  // not served here: the general path says so
        #"{"op":"put","key":"\ud800","value":"v"}"#,                            // a lone surrogate
        #"{"op":"put","key":"\udc00x","value":"v"}"#,
        #"{"op":"put","key":"\ud800\u0041","value":"v"}"#,
        #"{"op":"put","key":"\x","value":"v"}"#,                                // a bad escape
        #"{"op":"put","key":"\u12","value":"v"}"#,
        #"{"op":"put","key":"\u12G4","value":"v"}"#,
        #"{"\u006fp":"put","key":"k","value":"v"}"#,                            // an escaped member name
        #"{"op":"put","key":"k","value":"v"} trailing"#,
        #"{"op":"put","key":"k","value":"v"}}"#,
        #"{"op":"put","key":"k","value":"v""#,
        #"{"op":"put","key":"k","value":"v",}"#,
        #"{"op":"put",,"key":"k","value":"v"}"#,
        #"{"op":"put" "key":"k","value":"v"}"#,
        #"{"op"="put","key":"k","value":"v"}"#,
        #"[{"op":"put","key":"k","value":"v"}]"#,
        "{\"op\":\"put\",\"key\":\"tab\there\",\"value\":\"v\"}",              // a raw control character
        "\u{FEFF}{\"op\":\"get\",\"key\":\"k\"}",                               // a byte order mark
        "{}", "", " ", "{", "}", "\"put\"", "null", "1",
    ]

    /// Every body the fast path takes gives the general path's request; every body it
    /// leaves still gets the general path's answer (it is not consulted for them).
    func testRequestFastPathAgreesWithTheJSONPath() {
        for body in Self.taken {
            let bytes = Array(body.utf8)
            guard let f = fast(bytes) else {
                XCTFail("the fast path left \(body)")
                continue
            }
            XCTAssertEqual(.success(f), general(bytes), body)
        }
        for body in Self.left {
            XCTAssertNil(fast(Array(body.utf8)), body)
        }
        // Invalid UTF-8 inside a string: left to the general path, which refuses it.
        for bad: [UInt8] in [[0xFF], [0xC3], [0xE2, 0x9C], [0xED, 0xA0, 0x80], [0xC0, 0xAF]] {
            let bytes = Array(#"{"op":"put","key":"k","value":"x"#.utf8) + bad + Array(#""}"#.utf8)
            XCTAssertNil(fast(bytes), "\(bad)")
            if case .success = general(bytes) { XCTFail("invalid UTF-8 \(bad) was accepted") }
        }
        // The stream the replica serves is the one the fast path checks.
        XCTAssertNil(fast(Array(#"{"op":"get","key":"k","stream":1}"#.utf8), stream: 2))
        XCTAssertNotNil(fast(Array(#"{"op":"get","key":"k","stream":2}"#.utf8), stream: 2))
    }

    /// Every truncation, and every one-byte change or insertion, of the bodies the fast
    /// path takes: it never traps, and whatever it takes the general path reads the same.
    func testMutatedBodiesNeverDisagree() {
        let replacements: [UInt8] = [0x00, 0x09, 0x20, 0x22, 0x2C, 0x2F, 0x30, 0x31, 0x3A, 0x5C, 0x75, 0x7B, 0x7D, 0x80, 0xFF, 0x65]
        var checked = 0, taken = 0
        func check(_ bytes: [UInt8]) {
            checked += 1
            guard let f = fast(bytes) else { return }
            taken += 1
            XCTAssertEqual(.success(f), general(bytes), String(decoding: bytes, as: UTF8.self))
        }
        for body in Self.taken where body.utf8.count < 200 {
            let bytes = Array(body.utf8)
            for n in 0..<bytes.count { check(Array(bytes[..<n])) }
            for i in bytes.indices {
                for r in replacements {
                    var changed = bytes
                    changed[i] = r
                    check(changed)
                    var inserted = bytes
                    inserted.insert(r, at: i)
                    check(inserted)
                }
            }
        }
        XCTAssertGreaterThan(checked, 10_000)
        XCTAssertGreaterThan(taken, 500, "the mutations should keep some bodies on the fast path")
    }

    /// What `RootStreams.Peek` decides for a body, where it needs no replica state (nil: an
    /// `unwatch` or backup chunk, whose stream is the one holding it, or keys of several streams).
    func peekStream(_ body: [UInt8], prefixes: [StreamPrefix]) -> UInt64? {
        guard let p = try? JSONDecoder().decode(RootStreams.Peek.self, from: Data(body)) else { return 1 }
        if let s = p.stream { return s }
        if (p.op == "unwatch" && p.id != nil) || p.backup != nil { return nil }
        let keys = [p.key, p.prefix, p.name].compactMap { $0 }
            + [p.compare, p.success, p.failure].compactMap { $0 }.flatMap { $0.compactMap(\.key) }
        let streams = Set(keys.map { StreamPrefix.stream(of: $0, in: prefixes) ?? 1 })
        return streams.count <= 1 ? streams.first ?? 1 : nil
    }

    /// A multi-stream process routes the common bodies without Foundation to the stream
    /// `Peek` picks for them (their `stream`, else their key's prefix, else 1).
    func testCommonBodiesGoToThePeekedStream() {
        let prefixes = [StreamPrefix(prefix: "orders/", stream: 2), StreamPrefix(prefix: "orders/eu/", stream: 3)]
        let bodies = Self.taken + Self.left + [
            #"{"op":"put","key":"orders/1","value":"v"}"#, #"{"op":"get","key":"orders/eu/7"}"#,
            #"{"op":"get","key":"orders\/eu\/7"}"#, #"{"key":"orders/x","op":"del"}"#,
            #"{"op":"put","key":"orders/1","value":"v","stream":1}"#, #"{"op":"get","key":"k","stream":3}"#,
            #"{"op":"status"}"#, #"{"key":"orders/1"}"#, #"{"op":"unwatch"}"#, #"{"op":"unwatch","id":3}"#,
            #"{"op":"range","prefix":"orders/"}"#, #"{"op":"backup","backup":4,"offset":0}"#,
        ]
        var taken = 0
        for body in bodies {
            let bytes = Array(body.utf8)
            guard let fast = RootStreams.commonStream(Data(bytes), prefixes: prefixes) else { continue }
            taken += 1
            XCTAssertEqual(fast, peekStream(bytes, prefixes: prefixes), body)
        }
        XCTAssertGreaterThan(taken, Self.taken.count)
        for body in Self.taken { XCTAssertNotNil(RootStreams.commonStream(Data(body.utf8), prefixes: prefixes), body) }
        XCTAssertEqual(RootStreams.commonStream(Data(#"{"op":"get","key":"orders/eu/7"}"#.utf8), prefixes: prefixes), 3)
        XCTAssertEqual(RootStreams.commonStream(Data(#"{"op":"get","key":"k"}"#.utf8), prefixes: prefixes), 1)
        XCTAssertNil(RootStreams.commonStream(Data(#"{"op":"range","prefix":"orders/"}"#.utf8), prefixes: prefixes))
    }

    func record(_ key: String, _ value: String, lease: UInt64? = nil) -> KVRecord {
        KVRecord(key: Array(key.utf8), value: Array(value.utf8), createRevision: 3, modRevision: 9, version: 4, lease: lease)
    }

    /// The hand-written answers are byte for byte what `JSONEncoder` writes.
    func testAnswerFastPathIsByteIdentical() {
        var everyASCII = ""
        for c in 0..<0x80 { everyASCII.append(Character(Unicode.Scalar(UInt8(c)))) }
        let texts = ["", "k", "bench/0/17", everyASCII, "héllo ✓ 🎉", "\u{2028}\u{FEFF}", String(repeating: "v", count: 4096)]
        var results: [StateResult] = [
            .ok(.put(revision: 1, previous: nil)),
            .ok(.put(revision: Int64.max, previous: nil)),
            .ok(.put(revision: 0, previous: record("k", "v", lease: UInt64.max))),
            .ok(.deleted(revision: 7, deleted: [])),
            .ok(.deleted(revision: 7, deleted: [record("a", "1"), record("b", "2", lease: 5)])),
            .ok(.record(KVRecord(key: [], value: [], createRevision: -1, modRevision: Int64.min, version: 0, lease: nil), revision: -3)),
        ]
        for t in texts {
            results.append(.ok(.record(record(t, t), revision: 12)))
            results.append(.ok(.put(revision: 10, previous: record(t, "x", lease: 1))))
            results.append(.ok(.deleted(revision: 11, deleted: [record(t, t), record("z", t)])))
        }
        for result in results {
            guard let fastBytes = StateAnswerJSON.encode(result) else {
                XCTFail("the fast encoder left \(result)")
                continue
            }
            let reference = StateCoding.encode(StateAnswer(result))
            XCTAssertEqual(String(decoding: fastBytes, as: UTF8.self), String(decoding: reference, as: UTF8.self))
            XCTAssertEqual(fastBytes, reference)
        }
    }

    /// The answers it does not write, and text that is not UTF-8, are left to `JSONEncoder`.
    func testAnswerFastPathLeavesTheRest() {
        let notUTF8 = KVRecord(key: [0xFF], value: Array("v".utf8), createRevision: 1, modRevision: 1, version: 1, lease: nil)
        let left: [StateResult] = [
            .failed(.keyNotFound(key: Array("k".utf8))),
            .failed(.compareFailed(key: Array("k".utf8), current: nil)),
            .ok(.records([], more: false, revision: 1)),
            .ok(.txn(succeeded: true, revision: 1, responses: [])),
            .ok(.unlocked(name: "n", revision: 2)),
            .ok(.record(notUTF8, revision: 1)),
            .ok(.put(revision: 1, previous: KVRecord(key: Array("k".utf8), value: [0xC3], createRevision: 1, modRevision: 1, version: 1, lease: nil))),
            .ok(.deleted(revision: 1, deleted: [record("a", "1"), notUTF8])),
        ]
        for result in left { XCTAssertNil(StateAnswerJSON.encode(result), "\(result)") }
    }
}
