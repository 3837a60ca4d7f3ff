import DAgentNode
import DAgentRouting
import DAgentTestSupport
import DAgentWire
import Foundation
import NIOCore
import XCTest

/// A request whose link goes down before the answer fails at once, naming the link,
/// instead of waiting out its timeout (real TCP links, in one process).
final class RequestLinkDownTests: XCTestCase {
    static let unanswered: UInt32 = 0xFFFF_0995   // a type whose handler never answers

    /// A root on a free port and a child `svc` joined to it; `holds` is called with each
    /// unanswered request the named side takes.
    func tree(unansweredAt side: String, holds: @escaping @Sendable () -> Void) throws -> (root: Node, svc: Node) {
        let port = freePort()
        var rc = NodeConfig(name: "root")
        rc.listen = [.tcp(host: "127.0.0.1", port: port)]
        let root = try Node(config: rc)
        var c = NodeConfig(name: "svc")
        c.parents = [.tcp(host: "127.0.0.1", port: port)]
        let svc = try Node(config: c)
        (side == "root" ? root : svc).handleRequests(ofType: Self.unanswered) { _ in holds() }
        try root.start().wait()
        try svc.start().wait()
        try svc.ready().wait()
        return (root, svc)
    }

    func assertFailsAtOnce(_ future: EventLoopFuture<Dagent_Envelope>, naming which: String,
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try future.wait(), file: file, line: line) { error in
            guard let e = error as? DAgentError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(e.code, .noRoute, "\(e)", file: file, line: line)
            XCTAssertTrue(e.reason.contains("\(which) it left on went down before an answer"), e.reason, file: file, line: line)
        }
    }

    func testARequestToAChildThatLeavesFailsWhenItsLinkGoesDown() throws {
        let held = HeldFlag()
        let (root, svc) = try tree(unansweredAt: "svc") { held.set() }
        defer { try? root.shutdown() }
        // The timeout is far longer than the test may take: only the link going down can end it.
        let answer = root.request(to: "svc", type: Self.unanswered, payload: Data("q".utf8), timeout: 60)
        waitFor("svc holds the request") { held.isSet }
        try svc.shutdown()
        assertFailsAtOnce(answer, naming: "its link")
    }

    func testARequestUpThroughAParentThatGoesAwayFailsAtOnce() throws {
        let held = HeldFlag()
        let (root, svc) = try tree(unansweredAt: "root") { held.set() }
        defer { try? svc.shutdown() }
        let answer = svc.request(to: "root", type: Self.unanswered, payload: Data("q".utf8), timeout: 60)
        waitFor("root holds the request") { held.isSet }
        try root.shutdown()
        assertFailsAtOnce(answer, naming: "the parent link")
    }
}

/// A flag set from the event loop and read from the test thread.
final class HeldFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
