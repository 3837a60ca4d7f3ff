/// Values shared by every link and every node: protocol version, reserved
/// message types and default limits.
public enum WireConstants {
    /// Protocol version carried in `Register.protocolVersion`.
    public static let protocolVersion: UInt32 = 1
    /// Bytes of the big-endian length prefix in front of each TCP frame.
    public static let lengthPrefixBytes = 4
    /// Default `max_frame_bytes`: the largest frame a link accepts.
    public static let defaultMaxFrameBytes = 4 * 1024 * 1024 + 64 * 1024
    /// Default `max_message_bytes`: the largest payload a node accepts.
    public static let defaultMaxMessageBytes = 1024 * 1024
    /// Default hop limit of a newly sent envelope.
    public static let defaultHopLimit: UInt32 = 32
    /// Message types at or above this value are reserved for dagent itself.
    public static let firstReservedType: UInt32 = 0xFFFF_0000
    /// A REQUEST of this type is answered by the destination node's core with an
    /// empty RESPONSE, without reaching the application. `dagent send` uses it
    /// to confirm delivery of the messages sent before it (links are FIFO).
    public static let pingType: UInt32 = 0xFFFF_FFFF
    /// A REQUEST of this type asks the destination's plugin host to act (JSON
    /// payload, e.g. `{"op":"reload","plugin":"echo"}`); `dagent reload` sends it.
    /// A node without plugins refuses it.
    public static let pluginAdminType: UInt32 = 0xFFFF_0001
}
