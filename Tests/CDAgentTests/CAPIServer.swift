import CDAgent
import Foundation
import XCTest

/// A node "srv" listening on `port`, served on its own thread as a C program serves one:
/// it waits, takes up to 64 items at a time and hands each message to `handle` (on that
/// thread, with the node), until `stop()`, which then destroys the node.
final class CAPIServer: @unchecked Sendable {
    let node: OpaquePointer
    private let lock = NSLock()
    private var stopping = false
    private let done = DispatchSemaphore(value: 0)
    private let handle: (OpaquePointer, dagent_item) -> Void

    init(port: Int, handle: @escaping (OpaquePointer, dagent_item) -> Void) throws {
        guard let n = dagent_create("srv", nil, "tcp://127.0.0.1:\(port)", nil) else {
            throw NSError(domain: "dagent", code: 1, userInfo: [NSLocalizedDescriptionKey: String(cString: dagent_last_error())])
        }
        node = n
        self.handle = handle
        Thread { self.serve() }.start()
    }

    /// A node "cli" whose parent is the server on `port`, once it is registered (failures recorded
    /// at the caller's line).
    static func connectClient(port: Int, file: StaticString = #filePath, line: UInt = #line) -> OpaquePointer? {
        let client = dagent_create("cli", "tcp://127.0.0.1:\(port)", nil, nil)
        XCTAssertNotNil(client, String(cString: dagent_last_error()), file: file, line: line)
        XCTAssertEqual(dagent_wait_ready(client, 10), 0, String(cString: dagent_last_error()), file: file, line: line)
        return client
    }

    private func serve() {
        let items = UnsafeMutablePointer<dagent_item>.allocate(capacity: 64)
        defer { items.deallocate(); done.signal() }
        while !isStopping {
            if dagent_wait(node, 20) <= 0 { continue }
            let n = dagent_take(node, items, 64)
            for i in 0..<Int(Swift.max(n, 0)) where items[i].kind == Int32(DAGENT_ITEM_MESSAGE) {
                handle(node, items[i])
            }
        }
    }

    private var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    func stop() {
        lock.lock()
        stopping = true
        lock.unlock()
        done.wait()
        dagent_destroy(node)
    }
}
