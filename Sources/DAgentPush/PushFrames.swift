import Foundation
import DAgentWire
import NIOCore

/// Encodes the server's JSON text frames. A `msg` frame is encoded once per
/// message and the same `ByteBuffer` is written to every client (no per-client copy).
public enum PushFrames {
    static let allocator = ByteBufferAllocator()

    /// `{"op":"msg","topic":T,"seq":N,"data":TEXT}`, or `"data_b64"` when the
    /// payload is not valid UTF-8.
    public static func msg(topic: String, seq: UInt64, payload: some Collection<UInt8>) -> ByteBuffer {
        var b = allocator.buffer(capacity: payload.count + topic.utf8.count + 64)
        b.writeStaticString("{\"op\":\"msg\",\"topic\":")
        JSONString.write(topic, into: &b)
        b.writeStaticString(",\"seq\":")
        b.writeString(String(seq))
        appendData(payload, into: &b)
        b.writeStaticString("}")
        return b
    }

    /// `"data":TEXT` for valid UTF-8, else `"data_b64":BASE64`.
    static func appendData(_ payload: some Collection<UInt8>, into b: inout ByteBuffer) {
        if let text = String(validating: payload, as: UTF8.self) {
            b.writeStaticString(",\"data\":")
            JSONString.write(text, into: &b)
        } else {
            b.writeStaticString(",\"data_b64\":\"")
            b.writeString(Data(payload).base64EncodedString())
            b.writeStaticString("\"")
        }
    }

    /// `{"op":"subscribed","topic":P,"epoch":E,"recovered":B,...}`; `seq` is the
    /// topic's current sequence number for an exact topic.
    public static func subscribed(pattern: String, epoch: String, recovered: Bool, seq: UInt64?, replayed: Int, ref: String?) -> ByteBuffer {
        var b = allocator.buffer(capacity: 128 + pattern.utf8.count)
        b.writeStaticString("{\"op\":\"subscribed\",\"topic\":")
        JSONString.write(pattern, into: &b)
        b.writeStaticString(",\"epoch\":")
        JSONString.write(epoch, into: &b)
        b.writeString(recovered ? ",\"recovered\":true" : ",\"recovered\":false")
        if let seq { b.writeString(",\"seq\":\(seq)") }
        b.writeString(",\"replayed\":\(replayed)")
        writeRef(ref, into: &b)
        b.writeStaticString("}")
        return b
    }

    /// `{"op":"unsubscribed","topic":P}`.
    public static func unsubscribed(pattern: String, ref: String?) -> ByteBuffer {
        var b = allocator.buffer(capacity: 64 + pattern.utf8.count)
        b.writeStaticString("{\"op\":\"unsubscribed\",\"topic\":")
        JSONString.write(pattern, into: &b)
        writeRef(ref, into: &b)
        b.writeStaticString("}")
        return b
    }

    /// `{"op":"published","topic":T}`: the gateway took the client's message.
    public static func published(topic: String, ref: String?) -> ByteBuffer {
        var b = allocator.buffer(capacity: 64 + topic.utf8.count)
        b.writeStaticString("{\"op\":\"published\",\"topic\":")
        JSONString.write(topic, into: &b)
        writeRef(ref, into: &b)
        b.writeStaticString("}")
        return b
    }

    /// `{"op":"connected","client":ID,"sub":USER,"epoch":E}`: sent once the token is accepted.
    public static func connected(client: UInt64, user: String, epoch: String) -> ByteBuffer {
        var b = allocator.buffer(capacity: 96 + user.utf8.count)
        b.writeString("{\"op\":\"connected\",\"client\":\(client),\"sub\":")
        JSONString.write(user, into: &b)
        b.writeStaticString(",\"epoch\":")
        JSONString.write(epoch, into: &b)
        b.writeStaticString("}")
        return b
    }

    /// `{"op":"error","code":C,"reason":R}` (plus `topic` and `id` when known).
    public static func error(_ e: PushRequestError) -> ByteBuffer {
        var b = allocator.buffer(capacity: 96 + e.reason.utf8.count)
        b.writeString("{\"op\":\"error\",\"code\":\(e.code),\"reason\":")
        JSONString.write(e.reason, into: &b)
        if let t = e.topic {
            b.writeStaticString(",\"topic\":")
            JSONString.write(t, into: &b)
        }
        writeRef(e.ref, into: &b)
        b.writeStaticString("}")
        return b
    }

    static func writeRef(_ ref: String?, into b: inout ByteBuffer) {
        if let ref {
            b.writeStaticString(",\"id\":")
            b.writeString(ref)
        }
    }
}
