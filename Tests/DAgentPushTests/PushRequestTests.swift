import DAgentPush
import XCTest

final class PushRequestTests: XCTestCase {
    func parse(_ s: String) -> Result<PushRequest, PushRequestError> {
        PushRequest.parse(Array(s.utf8), maxTopicBytes: 256)
    }

    func error(_ s: String) -> PushRequestError? {
        if case .failure(let e) = parse(s) { return e }
        return nil
    }

    func testOps() {
        XCTAssertEqual(try parse(#"{"op":"sub","topic":"news.>"}"#).get(), .sub(ref: nil, pattern: "news.>", since: nil))
        XCTAssertEqual(try parse(#"{"op":"sub","topic":"a.b","since":{"epoch":"e1","seq":7},"id":3}"#).get(),
                       .sub(ref: "3", pattern: "a.b", since: PushSince(epoch: "e1", seq: 7)))
        XCTAssertEqual(try parse(#"{"op":"sub","topic":"a.>","since":{"epoch":"e1","seqs":{"a.x":2}}}"#).get(),
                       .sub(ref: nil, pattern: "a.>", since: PushSince(epoch: "e1", seqs: ["a.x": 2])))
        XCTAssertEqual(try parse(#"{"op":"unsub","topic":"a.b","id":"x"}"#).get(), .unsub(ref: "\"x\"", pattern: "a.b"))
        XCTAssertEqual(try parse(#"{"op":"unsub","topic":"a.b","id":1}"#).get(), .unsub(ref: "1", pattern: "a.b"))
        XCTAssertEqual(error(#"{"op":"unsub","topic":"a.b","id":true}"#)?.code, PushCodes.badRequest)
        XCTAssertEqual(try parse(#"{"op":"pub","topic":"chat.1","data":"hi"}"#).get(), .pub(ref: nil, topic: "chat.1", data: Array("hi".utf8)))
        XCTAssertEqual(try parse(#"{"op":"pub","topic":"chat.1","data":{"a":1}}"#).get(), .pub(ref: nil, topic: "chat.1", data: Array(#"{"a":1}"#.utf8)))
        XCTAssertEqual(try parse(#"{"op":"pub","topic":"chat.1","data_b64":"AAH/"}"#).get(), .pub(ref: nil, topic: "chat.1", data: [0, 1, 255]))
    }

    func testBadFrames() {
        XCTAssertEqual(error("{not json")?.code, PushCodes.badRequest)
        XCTAssertEqual(error("[1,2]")?.code, PushCodes.badRequest)
        XCTAssertEqual(error(#"{"topic":"a"}"#)?.code, PushCodes.badRequest)
        XCTAssertEqual(error(#"{"op":"dance","topic":"a"}"#)?.code, PushCodes.unknownOp)
        XCTAssertEqual(error(#"{"op":"dance"}"#)?.code, PushCodes.unknownOp)
        XCTAssertEqual(error(#"{"op":"sub"}"#)?.reason, "\"sub\" needs a \"topic\" (string)")
        XCTAssertEqual(error(#"{"op":"pub","topic":"a.*","data":"x"}"#)?.code, PushCodes.badRequest)
        XCTAssertEqual(error(#"{"op":"pub","topic":"a"}"#)?.code, PushCodes.badRequest)
        XCTAssertEqual(error(#"{"op":"pub","topic":"a","data_b64":"%%%"}"#)?.code, PushCodes.badRequest)
        XCTAssertEqual(error(#"{"op":"sub","topic":"a","since":{"seq":1}}"#)?.code, PushCodes.badRequest)
        XCTAssertEqual(error(#"{"op":"sub","topic":"a","since":{"epoch":"e","seq":-1}}"#)?.code, PushCodes.badRequest)
        XCTAssertEqual(error(#"{"op":"sub","topic":"a","id":[1]}"#)?.code, PushCodes.badRequest)
        // The id is echoed even in errors.
        XCTAssertEqual(error(#"{"op":"sub","topic":"a..b","id":9}"#)?.ref, "9")
        // Deep nesting and garbage never trap.
        XCTAssertNotNil(error(String(repeating: "[", count: 100_000)))
        XCTAssertNotNil(error(String(repeating: "{\"a\":", count: 50_000)))
        XCTAssertNotNil(PushRequest.parse([0xFF, 0xFE, 0x00], maxTopicBytes: 256).failureValue)
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}
