import ArgumentParser
import DAgentMetrics
import DAgentNode
import DAgentPython
import Foundation

/// `dagent options`: every config option the registry knows (the source of docs/config.md).
struct OptionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "options",
        abstract: "List the node's config options: YAML key, `dagent run` flag, type, default, range and meaning.",
        discussion: """
        The registry behind the YAML keys, the run flags and docs/config.md. --markdown prints the
        table that docs/config.md holds between its OPTIONS markers (scripts/gen-docs writes it
        there; a test fails when they differ).
        """
    )

    /// Every option, node and plugin sections alike, in registry order.
    static var rows: [OptionDoc] { NodeOptions.table.docs + PluginOptions.table.docs + MetricsOptions.table.docs }

    @Flag(help: "Print the Markdown table of docs/config.md.") var markdown = false
    @Flag(help: "Print a JSON array of options.") var json = false

    func validate() throws {
        if markdown && json { throw ValidationError("give --markdown or --json, not both") }
    }

    func run() throws {
        let rows = OptionsCommand.rows
        if markdown {
            print(OptionDocs.markdown(rows), terminator: "")
        } else if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
        } else {
            for r in rows {
                let flag = r.flag.map { "  \($0)" } ?? ""
                let range = r.range.isEmpty ? "" : "  [\(r.range)]"
                print("\(r.key)\(flag)  (\(r.type.rawValue), default \(r.defaultValue))\(range)\n    \(r.help)")
            }
        }
    }
}
