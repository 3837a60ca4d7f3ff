import Foundation
import XCTest
@testable import DAgentRoot

/// The `@state` JSON parser refuses bad numbers instead of trapping.
final class StateProtocolTests: XCTestCase {
    func parse(_ json: String) -> String {
        do {
            return "\(try StateRequest.parse(Data(json.utf8), nowMs: 1000))"
        } catch {
            return "error: \(error)"
        }
    }

    func testNegativeAndAbsurdNumbersAreRefused() {
        // This one trapped (UInt64 of a negative) and killed the replica.
        XCTAssertEqual(parse(#"{"op":"lease_grant","id":-1,"ttl_ms":1}"#), #"error: lease_grant: "id" must be a non-negative integer (got -1)"#)
        XCTAssertEqual(parse(#"{"op":"lease_grant","ttl_ms":1e30}"#), #"error: lease_grant: "ttl_ms" must be an integer (got 1e+30)"#)
        XCTAssertEqual(parse(#"{"op":"lease_grant","ttl_ms":99999999999999999}"#).hasPrefix("error: lease_grant: \"ttl_ms\" 99999999999999999 exceeds"), true)
        XCTAssertEqual(parse(#"{"op":"range","prefix":"p","limit":-5}"#), #"error: range: "limit" must be a non-negative integer (got -5)"#)
        XCTAssertEqual(parse(#"{"op":"put","key":"k","value":"v","lease":-7}"#), #"error: put: "lease" must be a non-negative integer (got -7)"#)
        XCTAssertEqual(parse(#"{"op":"watch","prefix":"p","id":1.5}"#), #"error: watch: "id" must be an integer (got 1.5)"#)
        XCTAssertEqual(parse(#"{"op":"lease_keepalive","id":18446744073709551615}"#).hasPrefix("error:"), true)
        XCTAssertEqual(parse(#"{"op":"cas","key":"k","value":"v","expect_mod":"x"}"#).hasPrefix("error: cas:"), true)
        XCTAssertEqual(parse(#"{"op":"lease_grant","ttl_ms":5000}"#).hasPrefix("write(DAgentState.StateCommand.leaseGrant(id: 0, ttlMs: 5000"), true)
    }

    func testGarbageNeverTraps() {
        let samples = [#"[]"#, #"{"op":1}"#, #"{"op":"lock","name":"n","owner":"o","lease":-1}"#, "\u{0}", #"{"op":"get","key":null}"#,
                       String(repeating: "[", count: 10_000), #"{"op":"watch","prefix":"p","id":1,"from":-9223372036854775808}"#]
        for s in samples { _ = parse(s) }
    }
}
