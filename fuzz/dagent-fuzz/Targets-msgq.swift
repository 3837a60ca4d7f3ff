import DAgentMsgq
import DAgentWire
import NIOCore

/// Message-queue framing: reassembly of received queue messages (`MsgqIntake`, the
/// receiver's path) and the packer/reassembler round trip.
enum MsgqTargets {
    static let maxFrameBytes = 4096

    static let msgq = FuzzTarget(
        name: "msgq",
        summary: "MsgqIntake/MsgqReassembler on hostile queue messages; MsgqPacker -> reassembly is lossless",
        seeds: {
            // Mode 0: messages the real packer produces (batched frames, fragments, bye).
            var out: [MsgqOutMessage] = []
            var w = FrameWriter()
            for e in WireTargets.sampleEnvelopes() { w.append(e) }
            var big = Dagent_Envelope(); big.dst = "x"; big.payload = .init(repeating: 7, count: 500)
            w.append(big)
            MsgqPacker(maxText: 128).pack(w.take(allocator: ByteBufferAllocator()), sender: 5, incarnation: 3, into: &out)
            out.append(MsgqWire.control(.bye, sender: 5, incarnation: 3))
            var decode: [UInt8] = [0x00]
            for m in out {
                let text = Array(m.bytes.readableBytesView.dropFirst(MsgqWire.mtypeBytes))
                decode += [UInt8(text.count & 0xFF), UInt8(text.count >> 8)] + text
            }
            // Mode 1: frame bodies for the round trip ([u16 length][body]...).
            var trip: [UInt8] = [0x01, 0x40]
            for body in [Array("a frame".utf8), [UInt8](repeating: 1, count: 300), [0x0A, 0x00]] {
                trip += [UInt8(body.count & 0xFF), UInt8(body.count >> 8)] + body
            }
            return [("packer-messages", decode), ("roundtrip-bodies", trip)]
        },
        run: { input in
            guard let mode = input.bytes.first else { return }
            if mode & 1 == 0 { receive(input) } else { roundTrip(input) }
        })

    /// Byte 0 bit 1: the receiving queue is an agent's inbox (sender must equal mtype).
    /// Then messages as `[u16 length][text]`; each message's mtype is its sender field's low byte.
    static func receive(_ input: FuzzInput) {
        let inbox = input.bytes[0] & 2 != 0
        var intake = MsgqIntake(senderIsMtype: inbox, maxFrameBytes: maxFrameBytes)
        var batch: [MsgqDelivery] = []
        for text in input.pieces16(from: 1) {
            let mtype = text.count >= 16 ? Int(text[8]) : 1
            _ = text.withUnsafeBytes { intake.take($0, mtype: mtype, into: &batch) }
        }
        for d in batch {
            if case let .frames(_, _, bodies) = d {
                FuzzCheck.require(!bodies.isEmpty, "frames delivery without frames")
                for b in bodies {
                    FuzzCheck.require(b.readableBytes > 0 && b.readableBytes <= maxFrameBytes,
                                      "frame body of \(b.readableBytes) bytes (max_frame_bytes=\(maxFrameBytes))")
                    WireTargets.checkClassify(b)
                }
            }
        }
    }

    /// Byte 1 picks msgmax (`64 + b * 4`); then frame bodies as `[u16 length][body]`. Packing
    /// them and reassembling every message in order gives back exactly the bodies.
    static func roundTrip(_ input: FuzzInput) {
        let maxText = 64 + Int(input.byte(1)) * 4
        let bodies = input.pieces16(from: 2).filter { !$0.isEmpty }
        var stream = ByteBuffer()
        for b in bodies { stream.writeInteger(UInt32(b.count)); stream.writeBytes(b) }
        var messages: [MsgqOutMessage] = []
        MsgqPacker(maxText: maxText).pack(stream, sender: 9, incarnation: 2, into: &messages)
        var r = MsgqReassembler(maxFrameBytes: 1 << 17)
        var got: [[UInt8]] = []
        for m in messages {
            FuzzCheck.require(m.textSize <= maxText, "message of \(m.textSize) bytes exceeds msgmax \(maxText)")
            let text = m.bytes.getSlice(at: m.bytes.readerIndex + MsgqWire.mtypeBytes, length: m.textSize)!
            switch r.receive(text, mtype: 9, senderIsMtype: true) {
            case nil: break
            case let .frames(sender, incarnation, b)?:
                FuzzCheck.equal(sender, 9, "sender"); FuzzCheck.equal(incarnation, 2, "incarnation")
                got += b.map { Array($0.readableBytesView) }
            case let other?: FuzzCheck.fail("packer output reassembled to \(other)")
            }
        }
        FuzzCheck.equal(got, bodies, "packed and reassembled frames")
        FuzzCheck.equal(r.partialCount, 0, "frames left half reassembled")
    }
}
