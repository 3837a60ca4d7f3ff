import DAgentDeploy
import Foundation
import NIOCore
import NIOWebSocket
@testable import DAgentPushGateway

/// The push gateway's permessage-deflate inflater (a browser's compressed frames) and the
/// deploy topology file.
enum MoreTargets {
    /// A file of the repository, found from this source file (seeds are written from any directory).
    static func repoFile(_ path: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(path).path
    }

    static let maxBytes = 1 << 16

    static let deflate = FuzzTarget(
        name: "push-deflate",
        summary: "permessage-deflate frames from a browser: PushDeflateError or at most max_frame_bytes inflated; compress -> inflate is lossless",
        seeds: {
            let deflater = PushDeflater()
            let text = Array(String(repeating: #"{"op":"pub","topic":"chat","data":"hello"}"#, count: 20).utf8)
            var b = ByteBuffer(); b.writeBytes(text)
            let compressed = deflater.compress(b, windowBits: 15, allocator: ByteBufferAllocator()).map { Array($0.readableBytesView) } ?? []
            var frames: [UInt8] = [0x00]
            for piece in [Array(compressed.prefix(compressed.count / 2)), Array(compressed.dropFirst(compressed.count / 2))] {
                frames += [UInt8(piece.count & 0xFF), UInt8(piece.count >> 8)] + piece
            }
            return [("compressed-message", frames), ("plain", [0x01] + text)]
        },
        run: { input in
            guard let mode = input.bytes.first else { return }
            let handler = PushInflateHandler(params: PushDeflateParams(), maxBytes: maxBytes)
            let alloc = ByteBufferAllocator()
            if mode & 1 == 0 {
                // One compressed message in frames [u16 len][bytes]...; the last one has fin.
                let pieces = input.pieces16(from: 1)
                var total = 0
                for (i, p) in pieces.enumerated() {
                    var data = alloc.buffer(capacity: p.count); data.writeBytes(p)
                    let frame = WebSocketFrame(fin: i == pieces.count - 1, rsv1: i == 0, opcode: i == 0 ? .text : .continuation, data: data)
                    do { total += try handler.inflate(frame, alloc).readableBytes } catch is PushDeflateError { return } catch {
                        FuzzCheck.fail("inflate threw \(type(of: error)), not PushDeflateError: \(error)")
                    }
                    FuzzCheck.require(total <= maxBytes, "inflated \(total) bytes past max_frame_bytes=\(maxBytes)")
                }
            } else {
                let plain = Array(input.bytes.dropFirst())
                var b = alloc.buffer(capacity: plain.count); b.writeBytes(plain)
                guard let compressed = PushDeflater().compress(b, windowBits: 9 + Int32(input.byte(1) % 7), allocator: alloc) else {
                    FuzzCheck.fail("compress failed on \(plain.count) bytes")
                }
                let frame = WebSocketFrame(fin: true, rsv1: true, opcode: .binary, data: compressed)
                do {
                    let out = try handler.inflate(frame, alloc)
                    FuzzCheck.equal(Array(out.readableBytesView), plain, "deflate round trip")
                } catch PushDeflateError.tooLarge {
                    FuzzCheck.require(plain.count > maxBytes, "a \(plain.count)-byte message refused as too large")
                } catch { FuzzCheck.fail("inflating our own deflate output: \(error)") }
            }
        })

    static let topology = FuzzTarget(
        name: "topology",
        summary: "deploy topology YAML (TopologyParser): TopologyError or a topology that parses the same twice",
        seeds: {
            let sample = (try? String(contentsOfFile: repoFile("docs/deploy.md"), encoding: .utf8)).flatMap { doc -> String? in
                guard let a = doc.range(of: "```yaml\n"), let b = doc.range(of: "```", range: a.upperBound..<doc.endIndex) else { return nil }
                return String(doc[a.upperBound..<b.lowerBound])
            } ?? "name: t\nroot:\n  - {id: 1, listen: tcp://127.0.0.1:7100}\nagents: {}\n"
            return [("deploy-md", Array(sample.utf8)), ("minimal", Array("name: t\nroot:\n  - {id: 1, listen: tcp://127.0.0.1:7100}\nagents:\n  a1: {listen: tcp://127.0.0.1:7201, processes: {p: {run: [\"true\"]}}}\n".utf8))]
        },
        run: { input in
            let text = String(decoding: input.bytes, as: UTF8.self)
            let t: Topology
            do { t = try TopologyParser.parse(yaml: text, baseDirectory: "/tmp/fuzz") } catch is TopologyError { return } catch {
                FuzzCheck.fail("parse threw \(type(of: error)), not TopologyError: \(error)")
            }
            FuzzCheck.equal(try? TopologyParser.parse(yaml: text, baseDirectory: "/tmp/fuzz"), t, "parsing is deterministic")
            _ = t.processes
        })
}
