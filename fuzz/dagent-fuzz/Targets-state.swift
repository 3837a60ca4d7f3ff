import DAgentRoot
import DAgentState
import Foundation

/// `@state`: the JSON request parser (DAgentRoot.StateRequest), the binary command codec of
/// Raft entries (DAgentState.StateCommand) and the state machine's snapshot codec.
enum StateTargets {
    static let sampleRequests: [String] = [
        #"{"op":"put","key":"k","value":"v","lease":7}"#, #"{"op":"get","key":"k"}"#,
        #"{"op":"del","key":"k"}"#, #"{"op":"delprefix","prefix":"p"}"#, #"{"op":"range","prefix":"p","limit":10}"#,
        #"{"op":"cas","key":"k","value":"new","expect_value":"old"}"#, #"{"op":"cas","key":"k","value":"n","expect_mod":5}"#,
        #"{"op":"cas","key":"k","value":"n","expect_absent":true}"#,
        #"{"op":"txn","compare":[{"key":"k","value":"v"}],"success":[{"op":"put","key":"k","value":"w"}],"failure":[{"op":"get","key":"k"}]}"#,
        #"{"op":"lease_grant","ttl_ms":5000}"#, #"{"op":"lease_keepalive","id":1}"#, #"{"op":"lease_revoke","id":1}"#,
        #"{"op":"lock","name":"n","owner":"me","lease":1}"#, #"{"op":"unlock","name":"n","owner":"me"}"#,
        #"{"op":"watch","prefix":"p","from":12,"id":1}"#, #"{"op":"unwatch","id":1}"#, #"{"op":"status"}"#,
        #"{"op":"member_add","node":4,"address":"tcp://h:1"}"#, #"{"op":"member_remove","node":4}"#, #"{"op":"transfer","node":2}"#,
        #"{"op":"lease_grant","id":-1,"ttl_ms":1}"#,
        #"{"op": "put", "key": "a\/b", "value": "\u00e9\ud83c\udf89\n", "lease": 0, "stream": 1}"#,   // the fast path's shapes
        #"{"key":"bench/warm/3/17","op":"get"}"#,
    ]

    /// Commands of every kind, from the real encoder (`StateCommand.encode`).
    static var sampleCommands: [StateCommand] {
        var out: [StateCommand] = [
            .leaseGrant(id: 1, ttlMs: 1000, now: 5), .put(key: Array("a".utf8), value: Array("1".utf8), lease: 1),
            .put(key: Array("b/c".utf8), value: [0xFF, 0], lease: nil), .delete(key: Array("a".utf8)),
            .deleteRange(prefix: Array("b".utf8)), .get(key: Array("b/c".utf8)), .range(prefix: [], limit: 3),
            .compareAndSet(key: Array("a".utf8), expected: .absent, value: [1], lease: nil),
            .compareAndSet(key: Array("a".utf8), expected: .modRevision(2), value: [2], lease: 1),
            .leaseKeepAlive(id: 1, now: 50), .lock(name: "n", owner: "o", lease: 1), .unlock(name: "n", owner: "o"),
            .registerName(name: "a1.l1", session: 9, replica: 1, agent: "a1"), .releaseName(name: "a1.l1", session: 9),
            .tick(now: 5000), .leaseRevoke(id: 1),
        ]
        let txn = KVTxn(compares: [KVCompare(key: Array("a".utf8), .version(1))],
                        success: [.put(key: Array("x".utf8), value: [], lease: nil)], failure: [.range(prefix: [], limit: 0)])
        out.append(.txn(txn))
        return out
    }

    static let json = FuzzTarget(
        name: "state-json",
        summary: "@state JSON requests (one per line): parse errors are StateProtocolError; the fast paths (parseCommon, StateAnswerJSON) agree with the Codable ones; bodies and commands round-trip; applying never traps",
        seeds: {
            sampleRequests.enumerated().map { ("request-\($0.offset)", Array($0.element.utf8)) }
                + [("session", Array(sampleRequests.prefix(16).joined(separator: "\n").utf8))]
        },
        run: { input in
            var machine = KVStateMachine()
            var now: UInt64 = 1_000
            for line in input.bytes.split(separator: 0x0A, omittingEmptySubsequences: true) {
                now += 250
                let data = Data(line)
                let common = StateRequest.parseCommon(data)
                let request: StateRequest
                do { request = try StateRequest.parse(data, nowMs: now) } catch is StateProtocolError {
                    // The fast path takes only bodies the general path takes.
                    if let common { FuzzCheck.fail("parseCommon took a body parse refuses: \(common)") }
                    continue
                } catch {
                    FuzzCheck.fail("parse threw \(type(of: error)), not StateProtocolError: \(error)")
                }
                if let common { FuzzCheck.equal(common, request, "parseCommon vs parse") }
                // The decoded body survives the encoder both sides use.
                if let body = try? StateCoding.decoder().decode(StateRequestBody.self, from: data) {
                    let again = StateCoding.encode(body)
                    guard let back = try? StateCoding.decoder().decode(StateRequestBody.self, from: again) else {
                        FuzzCheck.fail("re-encoded body does not decode: \(String(decoding: again, as: UTF8.self))")
                    }
                    FuzzCheck.equal(back, body, "request body round trip")
                }
                switch request {
                case .write(let c), .read(let c): checkCommand(c, on: &machine)
                default: break
                }
            }
            checkSnapshot(of: machine)
        })

    /// A parsed command survives the entry codec, and the state machine applies it; the answer encodes.
    static func checkCommand(_ c: StateCommand, on machine: inout KVStateMachine) {
        let bytes = c.encode()
        guard let back = try? StateCommand.decode(bytes) else { FuzzCheck.fail("encoded \(c.name) does not decode") }
        FuzzCheck.equal(back, c, "command round trip")
        let result = c.isRead ? machine.read(c) : machine.apply(entry: bytes)
        let answer = StateCoding.encode(StateAnswer(result))
        // The hand-written answers are the encoder's bytes.
        if let fast = StateAnswerJSON.encode(result) { FuzzCheck.equal(fast, answer, "StateAnswerJSON vs JSONEncoder") }
    }

    /// snapshot() -> restore -> snapshot() gives the same bytes.
    static func checkSnapshot(of machine: KVStateMachine) {
        let snap = machine.snapshot()
        let restored: KVStateMachine
        do { restored = try KVStateMachine(snapshot: snap) } catch {
            FuzzCheck.fail("a machine's own snapshot does not restore: \(error)")
        }
        FuzzCheck.equal(restored.snapshot(), snap, "snapshot round trip")
    }

    static let command = FuzzTarget(
        name: "state-command",
        summary: "StateCommand.decode of Raft entries ([u8 len][entry]...): round-trips; applying a log never traps; snapshots restore",
        seeds: {
            let entries = sampleCommands.map { $0.encode() }
            var log: [UInt8] = []
            for e in entries where e.count < 256 { log += [UInt8(e.count)] + e }
            return entries.enumerated().map { ("command-\($0.offset)", [UInt8($0.element.count)] + $0.element) } + [("log", log)]
        },
        run: { input in
            var machine = KVStateMachine()
            for entry in input.pieces() {
                let c: StateCommand
                do { c = try StateCommand.decode(entry) } catch is StateCodecError {
                    _ = machine.apply(entry: entry)   // a malformed entry changes nothing, on every replica
                    continue
                } catch { FuzzCheck.fail("decode threw \(type(of: error)), not StateCodecError") }
                checkCommand(c, on: &machine)
            }
            checkSnapshot(of: machine)
        })

    static let snapshot = FuzzTarget(
        name: "state-snapshot",
        summary: "KVStateMachine(snapshot:) on a leader's snapshot bytes: errors or a machine whose snapshot round-trips",
        seeds: {
            var m = KVStateMachine()
            var seeds: [(String, [UInt8])] = [("empty", m.snapshot())]
            for c in sampleCommands { _ = m.apply(c) }
            seeds.append(("applied", m.snapshot()))
            return seeds
        },
        run: { input in
            guard var m = try? KVStateMachine(snapshot: input.bytes) else { return }
            checkSnapshot(of: m)
            for c in sampleCommands { checkCommand(c, on: &m) }
            checkSnapshot(of: m)
        })
}
