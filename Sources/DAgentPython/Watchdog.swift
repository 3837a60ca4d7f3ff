import CPyHost
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Watches what the plugin thread runs (the scope published by cpyhost.c).
/// Plugin code that runs longer than `handler_budget` is logged once and,
/// with `interrupt_handlers`, interrupted: `dagent.HandlerTimeout` is raised
/// in it with `PyThreadState_SetAsyncExc`. Time spent waiting (for work, or
/// in a blocking `dagent.request`) does not count. A scope is timed from the
/// first watchdog sample that saw it, so detection is late by at most one
/// sampling period (budget / 10, between 5 ms and 250 ms).
///
/// Limit: an asynchronous exception is seen only when the thread runs Python
/// bytecode again, so code blocked inside one long C call (`time.sleep(60)`,
/// a blocking socket read) is interrupted only when that call returns.
final class Watchdog: @unchecked Sendable {
    private let lock = NIOLock()
    private var budget: Double
    private var interrupt: Bool
    private var stopped = false
    private let logger: Logger
    private let stats: PluginStats

    init(budget: Double, interrupt: Bool, logger: Logger, stats: PluginStats) {
        self.budget = budget
        self.interrupt = interrupt
        self.logger = logger
        self.stats = stats
    }

    func update(budget: Double, interrupt: Bool) {
        lock.withLock {
            self.budget = budget
            self.interrupt = interrupt
        }
    }

    func start() {
        let thread = Thread { self.run() }
        thread.name = "dagent-watchdog"
        thread.start()
    }

    func stop() { lock.withLock { stopped = true } }

    private func run() {
        cpy_set_thread_name("dagent-watchdog")
        var warned: UInt64 = 0, interrupted: UInt64 = 0, escalated: UInt64 = 0
        // The scope seen in the previous sample and when it was first seen: a scope
        // is timed from the first sample that saw it (at most one period late).
        var lastSeq: UInt64 = 0, firstSeen: Int64 = 0
        while true {
            let (budget, interrupt, stopped) = lock.withLock { (self.budget, self.interrupt, self.stopped) }
            if stopped { return }
            usleep(UInt32(min(250_000, max(5_000, budget * 1e6 / 10))))
            var scope = cpy_scope()
            cpy_current_scope(&scope)
            let now = cpy_now_ns()
            if scope.seq != lastSeq {
                lastSeq = scope.seq
                firstSeen = now
                continue
            }
            guard scope.seq != 0, scope.kind == Int32(CPY_SCOPE_LOOP.rawValue) || scope.kind == Int32(CPY_SCOPE_HANDLER.rawValue)
                    || scope.kind == Int32(CPY_SCOPE_GUARDED.rawValue) || scope.kind == Int32(CPY_SCOPE_TASK.rawValue) else { continue }
            let elapsed = Double(now - firstSeen) / 1e9
            guard elapsed > budget else { continue }
            let what = describe(scope)
            if warned != scope.seq {
                warned = scope.seq
                stats.overBudget(slot: Int(scope.slot))
                let text = "\(what) has been running for \(String(format: "%.1f", elapsed))s, over handler_budget=\(budget)s"
                    + (interrupt ? "; interrupting it (dagent.HandlerTimeout)" : " (interrupt_handlers is off)")
                logger.warning("\(text)")
            }
            if interrupt && interrupted != scope.seq {
                interrupted = scope.seq
                _ = cpy_interrupt(scope.seq)
            } else if interrupt && interrupted == scope.seq && escalated != scope.seq && elapsed > 3 * budget + 1 {
                escalated = scope.seq
                logger.error("\(what) is still running \(String(format: "%.1f", elapsed))s after it was interrupted: it is blocked in a C call or catches HandlerTimeout; the plugin thread is stuck until it returns")
            }
        }
    }

    private func describe(_ scope: cpy_scope) -> String {
        let plugin = stats.pluginName(slot: Int(scope.slot))
        switch scope.kind {
        case Int32(CPY_SCOPE_HANDLER.rawValue):
            return "the handler for type \(scope.type) of plugin '\(plugin)'"
        case Int32(CPY_SCOPE_GUARDED.rawValue):
            return "a timer, setup or teardown of plugin '\(plugin)'"
        case Int32(CPY_SCOPE_TASK.rawValue):
            return "an async handler or task of plugin '\(plugin)'"
        default:
            return "an asyncio task step or callback on the plugin thread"
        }
    }
}
