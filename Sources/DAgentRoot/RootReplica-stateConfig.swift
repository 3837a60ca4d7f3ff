import DAgentState

extension RootReplica {
    /// The state machine's limits (`KVStateConfig`). Set before `start()`: the
    /// machine is rebuilt empty with them, and filled from the snapshot at start.
    public var stateConfig: KVStateConfig {
        get { machine.config }
        set { machine = KVStateMachine(config: newValue) }
    }
}
