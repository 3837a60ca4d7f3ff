import DAgentPush
import XCTest

final class PushTopicTests: XCTestCase {
    func testMatching() {
        XCTAssertTrue(PushTopic.matches(pattern: "news.>", topic: "news.a"))
        XCTAssertTrue(PushTopic.matches(pattern: "news.>", topic: "news.a.b"))
        XCTAssertFalse(PushTopic.matches(pattern: "news.>", topic: "news"))
        XCTAssertTrue(PushTopic.matches(pattern: "news.*", topic: "news.a"))
        XCTAssertFalse(PushTopic.matches(pattern: "news.*", topic: "news.a.b"))
        XCTAssertTrue(PushTopic.matches(pattern: "*.a", topic: "x.a"))
        XCTAssertTrue(PushTopic.matches(pattern: "a.*.c", topic: "a.b.c"))
        XCTAssertFalse(PushTopic.matches(pattern: "a.*.c", topic: "a.b.d"))
        XCTAssertTrue(PushTopic.matches(pattern: ">", topic: "anything.at.all"))
        XCTAssertTrue(PushTopic.matches(pattern: "a.b", topic: "a.b"))
        XCTAssertFalse(PushTopic.matches(pattern: "a.b", topic: "a.bc"))
        XCTAssertFalse(PushTopic.matches(pattern: "a.*", topic: "ab.c"))
    }

    func testValidation() {
        XCTAssertNil(PushTopic.problem(topic: "news.eu", maxBytes: 256))
        XCTAssertNotNil(PushTopic.problem(topic: "news.*", maxBytes: 256))
        XCTAssertNotNil(PushTopic.problem(topic: "", maxBytes: 256))
        XCTAssertNotNil(PushTopic.problem(topic: "a..b", maxBytes: 256))
        XCTAssertNotNil(PushTopic.problem(topic: "a b", maxBytes: 256))
        XCTAssertNil(PushTopic.problem(pattern: "news.>", maxBytes: 256))
        XCTAssertNotNil(PushTopic.problem(pattern: "news.>.x", maxBytes: 256))
        XCTAssertNotNil(PushTopic.problem(pattern: "ne*ws", maxBytes: 256))
        let long = String(repeating: "a", count: 300)
        XCTAssertEqual(PushTopic.problem(topic: long, maxBytes: 256), "the topic is 300 bytes, over max_topic_bytes=256")
    }
}
