import ArgumentParser
import DAgentCLI
import DAgentNode
import Foundation

/// The options of a `dagent state` command that prints JSON: joining the tree,
/// plus `--json`, accepted like everywhere else (JSON is these commands' only output).
@dynamicMemberLookup
struct StateJoinOptions: ParsableArguments {
    @OptionGroup var join: JoinOptions
    @Flag(help: "Print JSON (the only output of this command; accepted for scripts that pass it everywhere).") var json = false

    subscript<T>(dynamicMember path: KeyPath<JoinOptions, T>) -> T { join[keyPath: path] }

    func nodeConfig(suffix: String = "") throws -> NodeConfig { try join.nodeConfig(suffix: suffix) }
}

extension StateCommandGroup {
    static func call(_ join: StateJoinOptions, _ request: [String: Any], timeout: Double) -> Data {
        call(join.join, request, timeout: timeout)
    }
}
