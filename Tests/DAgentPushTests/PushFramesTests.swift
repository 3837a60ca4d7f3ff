import DAgentPush
import NIOCore
import XCTest

final class PushFramesTests: XCTestCase {
    func testMsgTextAndBinary() {
        let text = json(String(buffer: PushFrames.msg(topic: "a.b", seq: 3, payload: Array("hé \"q\"\n\u{1}".utf8))))
        XCTAssertEqual(text["op"] as? String, "msg")
        XCTAssertEqual(text["topic"] as? String, "a.b")
        XCTAssertEqual(text["seq"] as? Int, 3)
        XCTAssertEqual(text["data"] as? String, "hé \"q\"\n\u{1}")
        let bin = json(String(buffer: PushFrames.msg(topic: "a", seq: 1, payload: [0xFF, 0x00, 0x10])))
        XCTAssertNil(bin["data"])
        XCTAssertEqual(bin["data_b64"] as? String, "/wAQ")
    }

    func testAnswers() {
        let s = json(String(buffer: PushFrames.subscribed(pattern: "n.>", epoch: "e-1", recovered: true, seq: nil, replayed: 2, ref: "\"r\"")))
        XCTAssertEqual(s["op"] as? String, "subscribed")
        XCTAssertEqual(s["epoch"] as? String, "e-1")
        XCTAssertEqual(s["recovered"] as? Bool, true)
        XCTAssertEqual(s["id"] as? String, "r")
        let e = json(String(buffer: PushFrames.error(PushRequestError(4403, "no \"way\"", ref: "5", topic: "t"))))
        XCTAssertEqual(e["code"] as? Int, 4403)
        XCTAssertEqual(e["reason"] as? String, "no \"way\"")
        XCTAssertEqual(e["id"] as? Int, 5)
        XCTAssertEqual(e["topic"] as? String, "t")
    }
}
