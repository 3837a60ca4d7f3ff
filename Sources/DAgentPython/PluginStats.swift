import DAgentWire
import Foundation
import NIOConcurrencyHelpers

/// The plugin host's counters, readable from the event loop without touching
/// Python: the Python side pushes a status snapshot when something changes
/// (plugin loaded, handler error), the C side adds handled counts after each
/// batch and the watchdog adds over-budget counts.
final class PluginStats: @unchecked Sendable {
    struct Plugin {
        var slot = 0
        var name = "", path = "", state = "", error = "", lastError = ""
        var types: [UInt32] = []
        var errors: UInt64 = 0, interrupts: UInt64 = 0, loads: UInt64 = 0
        var errorsBy: [String: UInt64] = [:]
        var timers: UInt32 = 0, tasks: UInt32 = 0
    }

    private let lock = NIOLock()
    private var python = ""
    private var plugins: [Plugin] = []
    private var handledBySlot: [Int: UInt64] = [:]
    private var overBudgetBySlot: [Int: UInt64] = [:]
    private var handledTotal: UInt64 = 0
    private var unhandled: UInt64 = 0
    private var running = false
    var dropped: UInt64 = 0   // guarded by the host's inbox lock

    func setRunning(_ value: Bool) { lock.withLock { running = value } }

    /// A status snapshot from `dagent/_host.py` (`Host.status()`).
    func update(json text: String) {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return }
        var list: [Plugin] = []
        for p in obj["plugins"] as? [[String: Any]] ?? [] {
            var info = Plugin()
            info.slot = p["slot"] as? Int ?? 0
            info.name = p["name"] as? String ?? ""
            info.path = p["path"] as? String ?? ""
            info.state = p["state"] as? String ?? ""
            info.error = p["error"] as? String ?? ""
            info.lastError = p["last_error"] as? String ?? ""
            info.types = (p["types"] as? [Int] ?? []).map { UInt32(truncatingIfNeeded: $0) }
            info.errors = UInt64(p["errors"] as? Int ?? 0)
            info.interrupts = UInt64(p["interrupts"] as? Int ?? 0)
            info.loads = UInt64(p["loads"] as? Int ?? 0)
            info.timers = UInt32(p["timers"] as? Int ?? 0)
            info.tasks = UInt32(p["tasks"] as? Int ?? 0)
            for (k, v) in p["errors_by"] as? [String: Int] ?? [:] { info.errorsBy[k] = UInt64(v) }
            list.append(info)
        }
        lock.withLock {
            python = obj["python"] as? String ?? python
            plugins = list
            unhandled = UInt64(obj["unhandled"] as? Int ?? 0)
        }
    }

    func addHandled(_ counts: UnsafePointer<UInt64>, _ n: Int) {
        lock.withLock {
            for slot in 0..<n where counts[slot] > 0 {
                handledBySlot[slot, default: 0] += counts[slot]
                handledTotal += counts[slot]
            }
        }
    }

    var totalHandled: UInt64 { lock.withLock { handledTotal } }

    func overBudget(slot: Int) { lock.withLock { overBudgetBySlot[slot, default: 0] += 1 } }

    func pluginName(slot: Int) -> String {
        lock.withLock { plugins.first { $0.slot == slot }?.name ?? "" }
    }

    /// What `dagent tree` shows.
    func info(settings: PluginSettings, queued: Int, dropped: UInt64) -> Dagent_PluginHostInfo {
        lock.withLock {
            var h = Dagent_PluginHostInfo()
            h.running = running
            h.python = python
            h.dirs = settings.dirs
            h.handlerBudget = settings.handlerBudget
            h.queued = UInt64(queued)
            h.handled = handledTotal
            h.dropped = dropped
            h.unhandled = unhandled
            h.plugins = plugins.map { p in
                var i = Dagent_PluginInfo()
                i.name = p.name
                i.path = p.path
                i.state = p.state
                i.error = p.error
                i.types = p.types
                i.handled = handledBySlot[p.slot] ?? 0
                i.errors = p.errors
                i.errorsBy = p.errorsBy
                i.overBudget = overBudgetBySlot[p.slot] ?? 0
                i.interrupts = p.interrupts
                i.loads = p.loads
                i.lastError = p.lastError
                i.timers = p.timers
                i.tasks = p.tasks
                return i
            }
            return h
        }
    }
}
