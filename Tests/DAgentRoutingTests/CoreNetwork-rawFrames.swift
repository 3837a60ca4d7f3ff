import DAgentWire
import NIOCore
@testable import DAgentRouting

/// Hand-built frames for the tests that drive a core through `CoreNetwork.rawLink`
/// (a peer that speaks raw frames): adopt the protocol to get the helpers.
protocol RawFrameTesting {}

extension RawFrameTesting {
    /// `body` as a serialized `Frame`, what `NodeCore.receive(frameBody:)` takes.
    func body(_ body: Dagent_Frame.OneOf_Body) -> ByteBuffer {
        var frame = Dagent_Frame()
        frame.body = body
        return ByteBuffer(bytes: try! frame.serializedBytes() as [UInt8])
    }

    /// A `Register` of `name` (with `subtree` names below it, or query-only).
    func register(_ name: String, subtree: [String] = [], queryOnly: Bool = false) -> Dagent_Frame.OneOf_Body {
        var reg = Dagent_Register()
        reg.name = name
        reg.protocolVersion = WireConstants.protocolVersion
        reg.queryOnly = queryOnly
        reg.subtree = subtree.map { n in
            var r = Dagent_NameRecord()
            r.name = n
            return r
        }
        return .register(reg)
    }

    /// The last `RegisterResult` the raw links received (nil if none); clears `net.rawOut`.
    func lastResult(_ net: CoreNetwork) -> Dagent_RegisterResult? {
        let r = net.rawOut.reversed().compactMap { if case .registerResult(let r)? = $0.body { return r } else { return nil } }.first
        net.rawOut = []
        return r
    }
}
