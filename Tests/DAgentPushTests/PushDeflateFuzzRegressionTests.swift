import NIOCore
import NIOWebSocket
import XCTest
@testable import DAgentPushGateway

/// Compressed browser frames the fuzzer (`scripts/fuzz push-deflate`, docs/testing.md#fuzzing)
/// found to break the permessage-deflate inflater.
final class PushDeflateFuzzRegressionTests: XCTestCase {
    /// 65 bytes that made `PushInflateHandler.inflate` loop forever (zlib stopped making progress
    /// on bytes after the end of the deflate stream). Replayed as the fuzz target does: byte 0 is
    /// the mode, then frames `[u16 LE length][bytes]`, the first with RSV1, the last with FIN.
    func testInflateThatMakesNoProgressStops() {
        let input: [UInt8] = [0x00, 0x19, 0x00, 0xAA, 0x56, 0xCA, 0x2F, 0x01, 0x2C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x50, 0xB2, 0x52, 0x2A, 0x28, 0x4D, 0x12, 0xD2, 0x51, 0x2A, 0xC9, 0x2F, 0xC8, 0x4C, 0x06, 0xF2, 0x92, 0x31, 0x12, 0x4B, 0x80, 0x1A, 0x00, 0xDC, 0x94, 0xC4, 0x92, 0x44, 0x20, 0x2F, 0x23, 0x35, 0x27, 0x27, 0x5F, 0xA9, 0xB6, 0x7A, 0x54, 0xE5, 0x68, 0x28, 0x8D, 0x90, 0xA6, 0x10, 0x1C, 0xB9, 0x03, 0x00]
        var pieces: [[UInt8]] = []
        var i = 1
        while i + 1 < input.count {
            let n = Int(input[i]) | Int(input[i + 1]) << 8
            i += 2
            pieces.append(Array(input[i..<min(input.count, i + n)]))
            i = min(input.count, i + n)
        }
        let handler = PushInflateHandler(params: PushDeflateParams(), maxBytes: 1 << 16)
        var outcome = "inflated"
        for (k, p) in pieces.enumerated() {
            var data = ByteBufferAllocator().buffer(capacity: p.count)
            data.writeBytes(p)
            let frame = WebSocketFrame(fin: k == pieces.count - 1, rsv1: k == 0, opcode: k == 0 ? .text : .continuation, data: data)
            do { _ = try handler.inflate(frame, ByteBufferAllocator()) } catch {
                XCTAssertTrue(error is PushDeflateError, "\(error)")
                outcome = "\(error)"
                break
            }
        }
        XCTAssertTrue(outcome.contains("no progress") || outcome == "inflated", outcome)
    }
}
