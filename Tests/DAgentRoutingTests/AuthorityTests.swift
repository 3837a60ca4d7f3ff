import DAgentWire
import NIOCore
import XCTest
@testable import DAgentRouting

/// The root group plugs into a top node through `TopOfTreeAuthority`.
final class AuthorityTests: XCTestCase {
    final class Directory: TopOfTreeAuthority {
        var confirms: [(requestID: UInt64, agent: String, names: [String])] = []
        var released: [String] = []
        var refuse: Set<String> = []
        var answerAtOnce = false
        var remote: [String: LinkID] = [:]
        var peers: [LinkID] = []
        var downs: [LinkID] = []
        var frames: [Dagent_ServiceFrame] = []
        weak var core: NodeCore?

        func confirmNames(requestID: UInt64, agent: String, _ records: [Dagent_NameRecord]) {
            confirms.append((requestID, agent, records.map(\.name)))
            if answerAtOnce { answer(requestID, records.map(\.name)) }
        }
        func answer(_ requestID: UInt64, _ names: [String]) {
            let refused = names.filter(refuse.contains).map { name -> Dagent_NameRefusal in
                var r = Dagent_NameRefusal()
                r.name = name
                r.error = .nameTaken
                r.reason = "'\(name)' is held under another replica"
                return r
            }
            core!.namesConfirmed(requestID: requestID, refused: refused)
        }
        func releaseNames(_ names: [String]) { released += names }
        func peerLink(holding name: String) -> LinkID? { remote[name] }
        func peerUp(_ link: LinkID, hello: Dagent_PeerHello) { peers.append(link) }
        func peerDown(_ link: LinkID) { downs.append(link) }
        func serviceFrame(_ frame: Dagent_ServiceFrame, on link: LinkID) { frames.append(frame) }
    }

    func tree(_ directory: Directory) -> CoreNetwork {
        let net = CoreNetwork()
        let root = net.add("root", role: .root, hasParent: false)
        root.authority = directory
        directory.core = root
        net.add("a1", role: .agent, hasParent: true)
        net.add("ep1", role: .leaf, hasParent: true)
        return net
    }

    func testRegistrationWaitsForTheDirectory() {
        let directory = Directory()
        let net = tree(directory)
        net.connect("a1", to: "root")
        XCTAssertFalse(net.registered("a1"), "not answered before the directory confirms")
        XCTAssertEqual(directory.confirms.map(\.names), [["a1"]])
        directory.answer(directory.confirms[0].requestID, ["a1"])
        net.pump()
        XCTAssertTrue(net.registered("a1"))
    }

    func testAnAnswerInsideTheCallIsTakenToo() {
        let directory = Directory()
        directory.answerAtOnce = true
        let net = tree(directory)
        net.connect("a1", to: "root")
        net.connect("ep1", to: "a1")
        XCTAssertTrue(net.registered("a1"))
        XCTAssertTrue(net.registered("ep1"))
        XCTAssertEqual(directory.confirms.map(\.agent), ["a1", "a1"], "ep1's name came through agent a1")
    }

    func testARefusedNameIsRefusedBelow() {
        let directory = Directory()
        directory.answerAtOnce = true
        directory.refuse = ["ep1"]
        let net = tree(directory)
        net.connect("a1", to: "root")
        net.connect("ep1", to: "a1")
        XCTAssertEqual(net.failures("ep1").map(\.0), [.nameTaken])
    }

    func testNamesLeavingAreReleased() {
        let directory = Directory()
        directory.answerAtOnce = true
        let net = tree(directory)
        let (link, _) = net.connect("a1", to: "root")
        net.connect("ep1", to: "a1")
        net.cut("a1", link)
        XCTAssertEqual(directory.released.sorted(), ["a1", "ep1"])
    }

    func testUnknownNamesGoToTheReplicaTheDirectoryNames() throws {
        let directory = Directory()
        directory.answerAtOnce = true
        let net = tree(directory)
        net.connect("a1", to: "root")
        let (raw, link) = net.rawLink(to: "root")
        _ = raw
        var hello = Dagent_Frame()
        hello.peerHello.nodeID = 2
        hello.peerHello.service = "raft"
        deliver(hello, to: net, link: link)
        XCTAssertEqual(directory.peers, [link])
        directory.remote["elsewhere"] = link
        try net.send("a1", to: "elsewhere", "over the peer link")
        XCTAssertTrue(net.rawOut.contains { $0.envelope.dst == "elsewhere" }, "routed to the peer replica")
        try net.send("a1", to: "nowhere", "lost")
        XCTAssertEqual(net.errors("a1").map(\.error), [.noRoute])
        var service = Dagent_Frame()
        service.service.streamID = 7
        deliver(service, to: net, link: link)
        XCTAssertEqual(directory.frames.map(\.streamID), [7])
        net.cores["root"]!.linkDown(link, reason: "test", nowNs: net.nowNs)
        XCTAssertEqual(directory.downs, [link])
    }

    func deliver(_ frame: Dagent_Frame, to net: CoreNetwork, link: LinkID) {
        net.cores["root"]!.receive(frameBody: ByteBuffer(bytes: try! frame.serializedBytes() as [UInt8]), from: link, nowNs: net.nowNs)
        net.pump()
    }
}
