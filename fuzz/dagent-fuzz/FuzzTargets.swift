/// Every target of `dagent-fuzz`, by name (`DAGENT_FUZZ_TARGET`, `scripts/fuzz --list`).
/// A new target: write it in a `Targets-AREA.swift`, add it here, run `scripts/fuzz --seed`
/// to create fuzz/corpus/NAME from its seeds (docs/testing.md#fuzzing).
enum FuzzTargets {
    static let all: [FuzzTarget] = [
        WireTargets.envelope, WireTargets.batch, WireTargets.frame,
        MsgqTargets.msgq,
        StateTargets.json, StateTargets.command, StateTargets.snapshot,
        RaftTargets.message, RaftTargets.wal,
        DurableTargets.queueLog, DurableTargets.legacyDump,
        NodeTargets.config,
        RootTargets.dcf,
        PushTargets.push, MoreTargets.deflate,
        MoreTargets.topology,
    ]
}
