import DAgentDeploy
import DAgentNode
import DAgentWire
import Foundation

/// The supervised processes of a deployed agent in its `dagent tree` reply
/// (`TreeReply.processes`, from which the node's metrics take the
/// `dagent_process_*` series too).
///
/// The node's event loop must not wait for the supervisor's queue, so the
/// rows are copied here: on every change the supervisor reports, and once a
/// second. The reply adds the time since the copy to the uptime of running
/// processes.
final class DeployTreeRows: @unchecked Sendable {
    let lock = NSLock()
    var rows: [ProcessStatus] = []
    var takenAt = DeployClock.now()
    let tree: String

    init(tree: String) { self.tree = tree }

    /// Replaces the copy (not on the event loop: `snapshot()` waits for the supervisor's queue).
    func update(_ snapshot: [ProcessStatus]) {
        let now = DeployClock.now()
        lock.withLock {
            rows = snapshot
            takenAt = now
        }
    }

    /// Adds the processes to a tree reply. On the event loop; does not block.
    func fill(_ reply: inout Dagent_TreeReply) {
        let (rows, age) = lock.withLock { (self.rows, max(0, DeployClock.now() - takenAt)) }
        reply.deployTree = tree
        reply.processes = rows.map { Self.message($0, age: age) }
    }

    static func message(_ r: ProcessStatus, age: Double) -> Dagent_SupervisedProcess {
        var p = Dagent_SupervisedProcess()
        p.name = r.name
        p.state = r.state.rawValue
        p.pid = UInt32(clamping: max(0, r.pid ?? 0))
        p.restarts = UInt32(clamping: max(0, r.restarts))
        p.uptime = r.pid == nil ? 0 : r.uptime + age
        p.lastExit = r.lastExit
        p.registered = r.registered
        p.adopted = r.adopted
        p.nextStartIn = max(0, (r.nextStartIn ?? 0) - age)
        p.waitingFor = r.waitingFor
        return p
    }
}

extension DeployAgentService {
    /// Chains the process rows onto whatever else the node's tree reply
    /// carries (the plugin host sets its part before the agent starts), and
    /// keeps the rows fresh once a second.
    func installTreeRows() {
        let previous = node.treeExtension
        let rows = treeRows
        node.treeExtension = { reply in
            previous?(&reply)
            rows.fill(&reply)
        }
        refreshTreeRows()
        let t = DispatchSource.makeTimerSource(queue: work)
        t.schedule(deadline: .now() + .seconds(1), repeating: .seconds(1), leeway: .milliseconds(200))
        t.setEventHandler { [weak self] in self?.refreshTreeRows() }
        t.resume()
        treeTimer = t
    }

    /// Copies the supervisor's rows for the tree reply. On `work` (or before the timer starts).
    func refreshTreeRows() {
        treeRows.update(supervisor.snapshot())
    }
}
