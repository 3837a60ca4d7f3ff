@testable import DAgentPush
import Foundation
import NIOCore
import XCTest

/// The per-message paths written without Foundation give the answers of the general ones.
final class PushFastPathTests: XCTestCase {
    /// Every frame the publish fast path takes is parsed as Foundation's JSON path parses it;
    /// the frames it leaves (escapes, numbers, duplicates, other ops, bad topics) still get the
    /// general path's answers through `parse`.
    func testPublishFastPathAgreesWithTheJSONPath() {
        let taken = [
            #"{"op":"pub","topic":"chat.1","data":"hi"}"#,
            #"{"topic":"chat.1","data":"hi","op":"pub"}"#,
            #" { "op" : "pub" , "topic":"a.b.c", "data":"" } "#,
            "{\"op\":\"pub\",\n\t\"topic\":\"t\",\r\n\"data\":\"x y z\"}",
            #"{"op":"pub","topic":"chat.1","data":"hi","id":"p1"}"#,
            #"{"op":"pub","topic":"chat.1","data":"hi","id":"p/1 é"}"#,
            #"{"op":"pub","topic":"chat.1","data":"héllo ✓ 🎉","extra":"ignored"}"#,
            #"{"op":"pub","topic":"bench.0","data":"1234567890123456789012345678901234567890"}"#,
        ]
        for frame in taken {
            let bytes = Array(frame.utf8)
            guard let fast = PushRequest.parsePublish(bytes, maxTopicBytes: 256) else {
                XCTFail("the fast path left \(frame)")
                continue
            }
            XCTAssertEqual(fast, try PushRequest.parseJSON(bytes, maxTopicBytes: 256).get(), frame)
        }
        let left = [
            #"{"op":"pub","topic":"chat.1","data":"a\"b"}"#,          // an escape
            #"{"op":"pub","topic":"chat.1","data":"a\u0041"}"#,
            #"{"op":"pub","topic":"chat.1","data":{"a":1}}"#,          // not a string
            #"{"op":"pub","topic":"chat.1","data":5}"#,
            #"{"op":"pub","topic":"chat.1","data":"x","id":7}"#,       // a number id
            #"{"op":"pub","topic":"chat.1","data":"x","data":"y"}"#,   // a duplicate key
            #"{"op":"pub","topic":"chat.1","data_b64":"AAH/"}"#,
            #"{"op":"pub","topic":"chat.1","data":"x","data_b64":"AA=="}"#,
            #"{"op":"sub","topic":"chat.1"}"#,
            #"{"op":"pub","topic":"chat.*","data":"x"}"#,              // a bad topic: the general path says why
            #"{"op":"pub","topic":"","data":"x"}"#,
            #"{"op":"pub","data":"x"}"#,
            #"{"op":"pub","topic":"chat.1"}"#,
            #"{"op":"pub","topic":"chat.1","data":"x"} trailing"#,
            #"{"op":"pub","topic":"chat.1","data":"x""#,
            #"{"op":"pub","topic":"chat.1","data":"x",}"#,
            "{\"op\":\"pub\",\"topic\":\"chat.1\",\"data\":\"tab\there\"}",   // a raw control character
            "{}", "", "[1]", "\"pub\"",
            #"{"op":"pub","topic":"chat.1","data":"x","id":"\#(String(repeating: "i", count: 129))"}"#,
        ]
        for frame in left {
            let bytes = Array(frame.utf8)
            XCTAssertNil(PushRequest.parsePublish(bytes, maxTopicBytes: 256), frame)
            XCTAssertEqual(PushRequest.parse(bytes, maxTopicBytes: 256), PushRequest.parseJSON(bytes, maxTopicBytes: 256), frame)
        }
        // Invalid UTF-8 inside a string: left to the general path, which refuses the frame.
        var bad = Array(#"{"op":"pub","topic":"chat.1","data":"x"}"#.utf8)
        bad.insert(0xFF, at: bad.count - 3)
        XCTAssertNil(PushRequest.parsePublish(bad, maxTopicBytes: 256))
        if case .success = PushRequest.parse(bad, maxTopicBytes: 256) { XCTFail("invalid UTF-8 was accepted") }
        // max_topic_bytes applies on the fast path too.
        XCTAssertNil(PushRequest.parsePublish(Array(#"{"op":"pub","topic":"abcdef","data":"x"}"#.utf8), maxTopicBytes: 5))
    }

    /// Topic and pattern validation, now a byte scan, says what the Foundation-based check said.
    func testTopicProblemsMatchTheReference() {
        func reference(_ s: String, maxBytes: Int, wildcards: Bool) -> String? {
            let what = wildcards ? "pattern" : "topic"
            if s.isEmpty { return "the \(what) is empty" }
            let n = s.utf8.count
            if n > maxBytes { return "the \(what) is \(n) bytes, over max_topic_bytes=\(maxBytes)" }
            let tokens = s.split(separator: ".", omittingEmptySubsequences: false)
            for (i, t) in tokens.enumerated() {
                if t.isEmpty { return "the \(what) '\(s)' has an empty token (tokens are separated by single dots)" }
                for b in t.utf8 where b <= 0x20 || b == 0x7F {
                    return "the \(what) '\(s)' contains a space or control character"
                }
                if t == "*" || t == ">" {
                    if !wildcards { return "the topic '\(s)' contains the wildcard '\(t)' (wildcards are for subscriptions only)" }
                    if t == ">" && i != tokens.count - 1 { return "in '\(s)', '>' must be the last token" }
                } else if t.contains("*") || t.contains(">") {
                    return "the \(what) '\(s)' has a token with a wildcard inside ('\(t)'); '*' and '>' must stand alone"
                }
            }
            return nil
        }
        let cases = ["a", "a.b", "news.eu.fr", "*", ">", "a.*", "a.>", "*.a", "a.*.c", "a.>.c", ">.a", "a.**", "a*", "*a.b",
                     "a.b>", "a.>x", ".", "..", ".a", "a.", "a..b", "a b", "a.\tb", "a.\u{7F}", "é.ü", "日本.語", "a.*x.>",
                     "a.b c.*", "x.*.*", "x.>.>", "x.* ", String(repeating: "a", count: 300), String(repeating: "a.", count: 10) + ">"]
        for s in cases {
            for wildcards in [false, true] {
                XCTAssertEqual(PushTopic.problem(s, maxBytes: 256, wildcards: wildcards), reference(s, maxBytes: 256, wildcards: wildcards),
                               "\(s) wildcards=\(wildcards)")
            }
        }
    }

    /// A client cut off in the middle of a fan-out is skipped for the rest of it, and the route
    /// made before it left is not used again.
    func testClientRemovedDuringAFanOutIsSkipped() {
        let sink = RecordingSink()
        var limits = PushLimits()
        limits.sendQueueBytes = 100
        let hub = PushHub(limits: limits, bootID: "b", sink: sink)
        for id: PushClientID in 1...3 {
            XCTAssertTrue(hub.add(id))
            hub.authorize(id, user: "u")
            hub.subscribe(id, pattern: "t", since: nil, ref: nil, nowNs: 0)
        }
        hub.unwritable(2)
        let big = Array(repeating: UInt8(ascii: "x"), count: 150)
        hub.deliver(topic: "t", payload: Data(big), via: nil, nowNs: 0)   // 2's queue would pass 100 bytes: cut off
        XCTAssertEqual(sink.closed[2]?.0, PushCodes.slowConsumer)
        hub.deliver(topic: "t", payload: Data("after".utf8), via: nil, nowNs: 0)
        let msgs = { (id: PushClientID) in (sink.written[id] ?? []).filter { $0.hasPrefix("{\"op\":\"msg\"") } }
        XCTAssertEqual(msgs(1).count, 2)
        XCTAssertEqual(msgs(3).count, 2)
        XCTAssertEqual(msgs(2).count, 0)
        XCTAssertEqual(hub.stats.deliveries, UInt64(3 + 3 + 4), "3 connected + 3 subscribed answers, then 2 messages to 2 clients")
        XCTAssertTrue(msgs(1)[1].contains("\"seq\":2") && msgs(1)[1].contains("\"data\":\"after\""))
    }
}
