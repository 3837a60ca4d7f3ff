import DAgentMsgq

/// The node drives its message-queue links through `MsgqHost`.
extension Node: MsgqHost {
    package var msgqOptions: MsgqOptions {
        MsgqOptions(maxFrameBytes: config.maxFrameBytes, slowConsumerBytes: config.slowConsumerBytes,
                    heartbeatInterval: config.heartbeatInterval, maxChildren: config.maxChildren,
                    msgqQueueBytes: config.msgqQueueBytes, msgqSendTimeout: config.msgqSendTimeout,
                    msgqSendTimeoutOverride: config.msgqSendTimeoutOverride)
    }
}
