import CDAgent   // the header only: the functions come from CDAgentCore, linked in as a C program links libCDAgent
import DAgentTestSupport
import Foundation
import XCTest

/// The C API's requests (`dagent_request`, `dagent_request_into`, `dagent_request_async`) between
/// two nodes in this process over loopback TCP, called as a C program calls them: large replies
/// arrive intact, the async reply's bytes stay valid until the next take, errors keep their codes.
final class CAPIRequestTests: XCTestCase {
    /// The answering node: 1 echoes, 2 answers with `pattern(n)` for the 4-byte little-endian n
    /// it was sent, 3 never answers, 4 refuses with "no thanks" (one-way messages are ignored).
    static func answer(_ node: OpaquePointer, _ item: dagent_item) {
        guard item.cookie != 0 else { return }
        switch item.type {
        case 1:
            _ = dagent_respond(node, item.src, item.type, item.cookie, 1, item.data, item.len)
        case 2:
            var want: UInt32 = 0
            withUnsafeMutableBytes(of: &want) { $0.copyMemory(from: UnsafeRawBufferPointer(start: item.data, count: 4)) }
            let body = CAPIRequestTests.pattern(Int(UInt32(littleEndian: want)))
            _ = body.withUnsafeBytes { dagent_respond(node, item.src, item.type, item.cookie, 1, $0.baseAddress, $0.count) }
        case 4:
            _ = dagent_respond(node, item.src, item.type, item.cookie, 0, "no thanks", 9)
        default:
            break
        }
    }

    /// Where `dagent_request_into`'s allocator put the reply (the `user` of `landingAlloc`).
    final class Landing {
        var memory: UnsafeMutableRawPointer?
        var length = -1
        var calls = 0
        var refuse = false
        deinit { free(memory) }
    }

    static func pattern(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) } }

    static func sizeRequest(_ n: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(n).littleEndian) { Array($0) } }

    var server: CAPIServer!
    var client: OpaquePointer!

    override func setUpWithError() throws {
        let port = freePort()
        server = try CAPIServer(port: port, handle: Self.answer)
        client = CAPIServer.connectClient(port: port)
    }

    override func tearDown() {
        if let client { dagent_destroy(client) }
        server?.stop()
    }

    func request(into landing: Landing, type: UInt32, _ body: [UInt8], timeout: Double = 5) -> Int32 {
        body.withUnsafeBytes { b in
            dagent_request_into(client, "srv", type, b.baseAddress, b.count, timeout, landingAlloc, Unmanaged.passUnretained(landing).toOpaque())
        }
    }

    func testBlockingRequestCopiesALargeReplyOnceIntoTheCallersMemory() {
        let n = 1_000_000
        let landing = Landing()
        XCTAssertEqual(request(into: landing, type: 2, Self.sizeRequest(n)), 0, String(cString: dagent_last_error()))
        XCTAssertEqual(landing.calls, 1, "the allocator is asked once, for the whole reply")
        XCTAssertEqual(landing.length, n)
        XCTAssertTrue(Array(UnsafeRawBufferPointer(start: landing.memory, count: n)) == Self.pattern(n), "the 1 MB reply arrives intact")

        let empty = Landing()
        XCTAssertEqual(request(into: empty, type: 1, []), 0, String(cString: dagent_last_error()))
        XCTAssertEqual(empty.calls, 1, "an empty reply is handed over too")
        XCTAssertEqual(empty.length, 0)
    }

    func testMallocRequestStillReturnsTheReplyToFree() {
        let n = 300_000
        var reply: UnsafeMutableRawPointer?
        var replyLen = -1
        let body = Self.sizeRequest(n)
        let rc = body.withUnsafeBytes { dagent_request(client, "srv", 2, $0.baseAddress, $0.count, 5, &reply, &replyLen) }
        XCTAssertEqual(rc, 0, String(cString: dagent_last_error()))
        XCTAssertEqual(replyLen, n)
        XCTAssertTrue(Array(UnsafeRawBufferPointer(start: reply, count: replyLen)) == Self.pattern(n))
        dagent_free(reply)
    }

    func testBlockingRequestFailuresKeepTheirCodesAndNeverAllocate() {
        let refused = Landing()
        XCTAssertEqual(request(into: refused, type: 4, []), -Int32(DAGENT_E_REFUSED))
        XCTAssertEqual(String(cString: dagent_last_error()), "no thanks")
        XCTAssertEqual(refused.calls, 0)

        let late = Landing()
        XCTAssertEqual(request(into: late, type: 3, [1], timeout: 0.3), -Int32(DAGENT_E_TIMEOUT))
        XCTAssertEqual(dagent_last_error_code(), Int32(DAGENT_E_TIMEOUT))
        XCTAssertEqual(late.calls, 0)

        let nowhere = Landing()
        let rc = dagent_request_into(client, "nobody", 1, nil, 0, 5, landingAlloc, Unmanaged.passUnretained(nowhere).toOpaque())
        XCTAssertEqual(rc, -Int32(DAGENT_E_NO_ROUTE), String(cString: dagent_last_error()))
        XCTAssertEqual(nowhere.calls, 0)

        let full = Landing()
        full.refuse = true
        XCTAssertEqual(request(into: full, type: 1, [1, 2, 3]), -Int32(DAGENT_E_STATE))
        XCTAssertTrue(String(cString: dagent_last_error()).contains("allocator returned NULL"), String(cString: dagent_last_error()))

        XCTAssertEqual(dagent_request_into(client, "srv", 1, nil, 0, 5, nil, nil), -Int32(DAGENT_E_CONFIG))
    }

    func testAsyncReplyIsHandedOutByTakeAndStaysValidUntilTheNextTake() {
        let n = 1_000_000
        let items = UnsafeMutablePointer<dagent_item>.allocate(capacity: 8)
        defer { items.deallocate() }
        func takeOne() -> dagent_item? {
            waitFor("a queued reply") { dagent_wait(client, 50) > 0 }
            return dagent_take(client, items, 8) == 1 ? items[0] : nil
        }
        let big = Self.sizeRequest(n)
        XCTAssertEqual(big.withUnsafeBytes { dagent_request_async(client, "srv", 2, $0.baseAddress, $0.count, 5, 41) }, 0)
        guard let first = takeOne() else { return XCTFail("no reply item") }
        XCTAssertEqual(first.kind, Int32(DAGENT_ITEM_REPLY))
        XCTAssertEqual(first.token, 41)
        XCTAssertEqual(first.code, 0)
        XCTAssertEqual(first.len, n)

        // A second reply arrives (queued, not taken): the first one's bytes are still there.
        XCTAssertEqual(dagent_request_async(client, "srv", 1, "echo", 4, 5, 42), 0)
        waitFor("the second reply queued") { dagent_wait(client, 50) > 0 }
        XCTAssertTrue(Array(UnsafeRawBufferPointer(start: first.data, count: first.len)) == Self.pattern(n), "the 1 MB reply is intact until the next take")

        guard let second = takeOne() else { return XCTFail("no second reply item") }
        XCTAssertEqual(second.token, 42)
        XCTAssertEqual(String(decoding: UnsafeRawBufferPointer(start: second.data, count: second.len), as: UTF8.self), "echo")

        XCTAssertEqual(dagent_request_async(client, "srv", 4, nil, 0, 5, 43), 0)
        guard let refused = takeOne() else { return XCTFail("no refusal item") }
        XCTAssertEqual(refused.token, 43)
        XCTAssertEqual(refused.code, Int32(DAGENT_E_REFUSED))
        XCTAssertEqual(String(decoding: UnsafeRawBufferPointer(start: refused.data, count: refused.len), as: UTF8.self), "no thanks")

        XCTAssertEqual(dagent_request_async(client, "srv", 3, nil, 0, 0.2, 44), 0)
        guard let late = takeOne() else { return XCTFail("no timeout item") }
        XCTAssertEqual(late.token, 44)
        XCTAssertEqual(late.code, Int32(DAGENT_E_TIMEOUT))
    }
}

/// The `dagent_alloc` of the tests: records the call in the `Landing` that `user` points to.
private func landingAlloc(_ user: UnsafeMutableRawPointer?, _ n: Int) -> UnsafeMutableRawPointer? {
    let landing = Unmanaged<CAPIRequestTests.Landing>.fromOpaque(user!).takeUnretainedValue()
    landing.calls += 1
    if landing.refuse { return nil }
    landing.memory = malloc(Swift.max(n, 1))
    landing.length = n
    return landing.memory
}
