import DAgentMsgq

/// The node drives its message-queue links through `MsgqHost` (its
/// `msgqOptions` are taken from the config once, in `init`).
extension Node: MsgqHost {}
