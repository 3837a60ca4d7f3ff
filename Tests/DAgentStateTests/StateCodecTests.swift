import XCTest
import DAgentState

/// One of every command shape, with edge values.
let everyCommandShape: [StateCommand] = [
    .put(key: bytes("k"), value: [], lease: nil),
    .put(key: [0, 255], value: Array(repeating: 7, count: 300), lease: .max),
    .put(key: bytes("k"), value: bytes("v"), lease: 0),
    .delete(key: bytes("d")),
    .deleteRange(prefix: []),
    .get(key: bytes("g")),
    .range(prefix: bytes("r/"), limit: 0),
    .range(prefix: bytes("r/"), limit: -5),
    .compareAndSet(key: bytes("c"), expected: .modRevision(-1), value: bytes("x"), lease: 3),
    .compareAndSet(key: bytes("c"), expected: .modRevision(.max), value: [], lease: nil),
    .compareAndSet(key: bytes("c"), expected: .value(bytes("old")), value: bytes("new"), lease: nil),
    .compareAndSet(key: bytes("c"), expected: .absent, value: bytes("new"), lease: nil),
    .txn(KVTxn(compares: [], success: [], failure: [])),
    .txn(KVTxn(compares: [KVCompare(key: bytes("a"), .value(bytes("1"))), KVCompare(key: bytes("a"), .version(.min)),
                          KVCompare(key: bytes("a"), .modRevision(2)), KVCompare(key: bytes("a"), .createRevision(3)),
                          KVCompare(key: bytes("a"), .exists), KVCompare(key: bytes("b"), .missing)],
               success: [.put(key: bytes("a"), value: bytes("2"), lease: 1), .delete(key: bytes("b")),
                         .deleteRange(prefix: bytes("c")), .get(key: bytes("d")), .range(prefix: bytes("e"), limit: 9)],
               failure: [.put(key: bytes("x"), value: [], lease: nil)])),
    .leaseGrant(id: 0, ttlMs: 1, now: .max),
    .leaseKeepAlive(id: 5, now: 1_700_000_000_000),
    .leaseRevoke(id: .max),
    .tick(now: 0),
    .lock(name: "läck", owner: "ö", lease: 2),
    .unlock(name: "l", owner: "o"),
    .registerName(name: "svc.名前", session: .max, replica: 3, agent: "agent"),
    .releaseName(name: "n", session: 0),
    .releaseAllFor(.agent("a")),
    .releaseAllFor(.replica(42)),
]

final class StateCodecTests: XCTestCase {
    func testEveryCommandRoundTrips() throws {
        for command in everyCommandShape {
            let encoded = command.encode()
            XCTAssertEqual(encoded.first, StateCommand.formatVersion)
            XCTAssertEqual(try StateCommand.decode(encoded), command, "\(command)")
        }
    }

    func testEncodingIsCompact() {
        XCTAssertEqual(StateCommand.put(key: bytes("k"), value: bytes("v"), lease: nil).encode(), [1, 1, 1, 107, 1, 118, 0])
        XCTAssertEqual(StateCommand.tick(now: 300).encode(), [1, 11, 0xAC, 0x02])
    }

    func testMalformedInputsNameTheProblem() {
        func error(_ b: [UInt8]) -> StateCodecError? {
            do { _ = try StateCommand.decode(b); return nil } catch { return error as? StateCodecError }
        }
        XCTAssertEqual(error([]), .truncated(field: "format version", offset: 0))
        XCTAssertEqual(error([9, 1]), .unsupportedVersion(found: 9, supported: 1))
        XCTAssertEqual(error([1, 0]), .unknownTag(field: "command", tag: 0, offset: 1))
        XCTAssertEqual(error([1, 11]), .truncated(field: "tick.now", offset: 2))
        XCTAssertEqual(error([1, 11, 5, 0]), .trailingBytes(count: 1, offset: 3))
        XCTAssertEqual(error([1, 1, 100, 1]), .lengthOutOfRange(field: "put.key", length: 100, remaining: 1, offset: 2))
        XCTAssertEqual(error([1, 1, 1, 65, 0, 2]), .invalidFlag(field: "put.lease", value: 2, offset: 5))
        XCTAssertEqual(error([1, 13, 1, 0xFF, 1, 65]), .invalidUTF8(field: "unlock.name", offset: 2))
        XCTAssertEqual(error([1, 11] + Array(repeating: 0xFF, count: 10) + [1]), .varintOverflow(field: "tick.now", offset: 2))
        XCTAssertEqual(error([1, 7, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
                       .lengthOutOfRange(field: "txn.compares", length: 0xFFFF_FFFF, remaining: 0, offset: 2))
        XCTAssertEqual(error([1, 16, 3]), .unknownTag(field: "releaseAllFor.kind", tag: 3, offset: 2))
        XCTAssertTrue(StateCodecError.truncated(field: "tick.now", offset: 2).description.contains("tick.now"))
    }

    func testFuzzedBytesNeverCrash() {
        var rng = StateTestRNG(seed: 0xF00D)
        var machine = KVStateMachine()
        var decoded = 0
        func probe(_ input: [UInt8]) {
            if let command = try? StateCommand.decode(input) {
                decoded += 1
                XCTAssertEqual(try? StateCommand.decode(command.encode()), command)
            }
            _ = machine.apply(entry: input)
        }
        // Pure noise, mostly with a valid version byte so the tags get exercised.
        for _ in 0 ..< 3_000 {
            var input = (0 ..< Int.random(in: 0 ... 40, using: &rng)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            if !input.isEmpty, Bool.random(using: &rng) { input[0] = 1 }
            if input.count > 1, Bool.random(using: &rng) { input[1] = UInt8.random(in: 1 ... 16, using: &rng) }
            probe(input)
        }
        // Mutations of valid encodings: flips, truncations, insertions.
        let valid = everyCommandShape.map { $0.encode() }
        for _ in 0 ..< 3_000 {
            var input = valid.randomElement(using: &rng)!
            switch Int.random(in: 0 ..< 3, using: &rng) {
            case 0: input[Int.random(in: 0 ..< input.count, using: &rng)] = UInt8.random(in: 0 ... 255, using: &rng)
            case 1: input = Array(input.prefix(Int.random(in: 0 ..< input.count, using: &rng)))
            default: input.insert(UInt8.random(in: 0 ... 255, using: &rng), at: Int.random(in: 0 ... input.count, using: &rng))
            }
            probe(input)
        }
        XCTAssertGreaterThan(decoded, 100, "the fuzz reaches the decoders, not just the header check")
    }
}
