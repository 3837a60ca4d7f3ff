import Foundation
import XCTest
import DAgentState
@testable import DAgentRoot

/// The typed `@state` encoding: requests parse to commands, bad ones name the field.
final class StateProtocolTests: XCTestCase {
    func parse(_ json: String) throws -> StateRequest { try StateRequest.parse(Data(json.utf8), nowMs: 1000) }

    func testTxnParses() throws {
        let r = try parse(#"{"op":"txn","compare":[{"key":"k","version":0},{"key":"n","exists":true}],"success":[{"op":"put","key":"k","value":"v","lease":3}],"failure":[{"op":"range","prefix":"p","limit":2}]}"#)
        XCTAssertEqual(r, .write(.txn(KVTxn(compares: [KVCompare(key: Array("k".utf8), .version(0)), KVCompare(key: Array("n".utf8), .exists)],
                                            success: [.put(key: Array("k".utf8), value: Array("v".utf8), lease: 3)],
                                            failure: [.range(prefix: Array("p".utf8), limit: 2)]))))
    }

    func testBadRequestsNameTheField() {
        let cases: [(String, String)] = [
            (#"[1]"#, "not a JSON object"),
            (#"{"key":"k"}"#, "no \"op\""),
            (#"{"op":"put","key":"k"}"#, "\"value\""),
            (#"{"op":"put","key":7,"value":"v"}"#, "\"key\" has the wrong type"),
            (#"{"op":"txn","compare":[{"key":"k"}]}"#, "exactly one of"),
            (#"{"op":"txn","success":[{"op":"cas","key":"k"}]}"#, "unknown op \"cas\""),
            (#"{"op":"lease_grant","ttl_ms":0}"#, "must be > 0"),
            (#"{"op":"member_add","node":4,"address":"h:1"}"#, "tcp://HOST:PORT"),
            (#"{"op":"frobnicate"}"#, "unknown op"),
            (#"{"op":"get","key":"k","stream":2}"#, "stream 2 is not served here"),
        ]
        for (json, expected) in cases {
            XCTAssertThrowsError(try parse(json), json) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(json): \(error)")
            }
        }
    }

    func testAnswersAreTypedAndSnakeCase() throws {
        let info = KVLockInfo(name: "n", owner: "o", lease: 9, createRevision: 12)
        let data = StateCoding.encode(StateAnswer(.ok(.locked(info, revision: 12))))
        let obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        XCTAssertEqual((obj["lock"] as! [String: Any])["token"] as? Int, 12)
        let failed = StateCoding.encode(StateAnswer(.failed(.keyNotFound(key: Array("k".utf8)))))
        let back = try StateCoding.decoder().decode(StateAnswer.self, from: failed)
        XCTAssertEqual(back.code, "key_not_found")
        XCTAssertFalse(back.ok)
        let w = StateCoding.encode(StateWatchEvent(compactedWatch: 3, compactRevision: 40))
        XCTAssertEqual(String(decoding: w, as: UTF8.self), #"{"compacted":40,"oldest":41,"watch":3}"#)
    }
}
