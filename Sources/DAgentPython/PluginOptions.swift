import Foundation
import DAgentNode
import DAgentRouting

/// The `plugins:` section's options: the one list that its YAML parser, the plugin
/// flags of `dagent run` and the `plugins.*` rows of docs/config.md are built from.
/// Add an option as a property of `PluginSettings` plus one entry here.
public enum PluginOptions {
    public static let table = OptionTable<PluginSettings>(section: "plugins.", defaults: PluginSettings(), [
        .custom("dirs", type: .path, flag: "plugins", repeatable: true, acceptsList: true,
                help: "Python plugin directories, searched in order; `plugins: DIR` and `plugins: [DIR, ...]` are short forms. Relative paths are relative to the config file (to the working directory for `--plugins`, which adds to the file's list)") { s, v, ctx in
            let dirs = v.split(separator: ",").map { ctx.absolute(String($0)) }
            if ctx.isFlag {
                for d in dirs where !s.dirs.contains(d) { s.dirs.append(d) }
            } else {
                s.dirs = dirs
            }
        },
        .yamlOnly("config", type: .mapping, default: "{}",
                  help: "one section per plugin, by plugin name, validated against the plugin's `CONFIG`") { s, v, ctx in
            guard let sections = v as? [String: Any] else {
                throw ConfigError("\(ctx) must map plugin names to their sections (got \(v))")
            }
            let clean = sections.mapValues(jsonSafe)
            guard JSONSerialization.isValidJSONObject(clean),
                  let data = try? JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys]) else {
                throw ConfigError("\(ctx): cannot represent the plugin sections as JSON")
            }
            s.configJSON = String(decoding: data, as: UTF8.self)
        },
        .double("handler_budget", \.handlerBudget, min: 0.001, max: 3600,
                help: "plugin code (a handler, timer, task step, setup, teardown) running longer is logged and counted (`over_budget`)"),
        .bool("interrupt_handlers", \.interruptHandlers, help: "also interrupt such code by raising `dagent.HandlerTimeout` in it"),
        .int("queue_length", \.queueLength, min: 1, max: 10_000_000, flag: "plugin-queue-length",
             help: "messages waiting for the plugin thread; beyond it requests and confirmed sends (`dagent send`) get `queue full`, other one-way messages are counted as `dropped`"),
        .custom("python_path", type: .path, default: "found",
                help: "directory holding the `dagent` package; by default `$DAGENT_PYTHON_PATH`, then `python/` next to or above the executable, then `share/dagent/python`") { s, v, ctx in
            s.pythonPath = ctx.absolute(v)
        },
    ])
}
