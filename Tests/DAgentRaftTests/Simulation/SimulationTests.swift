import DAgentRaft
import Foundation
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

/// Randomized, deterministic whole-cluster simulations (3 and 5 nodes).
///
/// Environment:
/// - `RAFT_SIM_SEEDS`: seeds per cluster size (default below).
/// - `RAFT_SIM_SEED_START`: first seed (default 1). To replay a failure:
///   `RAFT_SIM_SEED_START=<seed> RAFT_SIM_SEEDS=1 swift test --filter SimulationTests`
/// - `RAFT_SIM_TRACE=1`: print the event trace of failing runs (`2`: every delivery and
///   state change too).
final class SimulationTests: XCTestCase {
    static let defaultSeeds = 200

    private func runSeeds(nodes: Int, pipelined: Bool = false) {
        let env = ProcessInfo.processInfo.environment
        let seeds = Int(env["RAFT_SIM_SEEDS"] ?? "") ?? Self.defaultSeeds
        let start = UInt64(env["RAFT_SIM_SEED_START"] ?? "") ?? 1
        let began = Date()
        var failures = 0
        var totals: [String: Int] = [:]
        var maxConverge = 0
        for i in 0..<seeds {
            let seed = start + UInt64(i)
            do {
                var params = SimParams.forSeed(seed, nodes: nodes)
                if pipelined {
                    // Every vote and every acknowledgement waits for a save of 1.25 ticks on
                    // average, so elections take more rounds (split votes without pre-vote):
                    // twice the liveness budget (seeds 138 and 152 needed more than 150 ticks).
                    params.pipelined = true
                    params.leaderDeadlineTicks *= 2
                    params.livenessTicks *= 2
                }
                let cluster = try RandomCluster(seed: seed, params: params)
                cluster.verbose = env["RAFT_SIM_TRACE"] == "2"
                do {
                    try cluster.run()
                    for (k, v) in cluster.stats { totals[k, default: 0] += v }
                    maxConverge = max(maxConverge, cluster.stats["ticks-to-converge"] ?? 0)
                } catch {
                    failures += 1
                    if env["RAFT_SIM_TRACE"] != nil {
                        print(cluster.trace.suffix(cluster.verbose ? 600 : 200).joined(separator: "\n"))
                    }
                    XCTFail("simulation failed: nodes=\(nodes) seed=\(seed) (\(params.summary)): \(error)\n" +
                            "replay: RAFT_SIM_SEED_START=\(seed) RAFT_SIM_SEEDS=1 RAFT_SIM_TRACE=1 swift test --filter SimulationTests/test\(pipelined ? "Pipelined" : "")Simulation\(nodes)Nodes")
                }
            } catch {
                XCTFail("setup failed for seed \(seed): \(error)")
            }
        }
        let secs = Date().timeIntervalSince(began)
        print(String(format: "raft simulation: %d nodes, %d seeds (%llu...%llu) in %.1fs, %d failed; max ticks to converge after heal %d; totals %@",
                     nodes, seeds, start, start + UInt64(max(seeds, 1)) - 1, secs, failures, maxConverge,
                     totals.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")))
    }

    /// Same seed, same run: the whole event trace (every delivery and state change) is
    /// identical, so any failing seed can be replayed.
    func testSimulationIsDeterministic() throws {
        var traces: [[String]] = []
        for _ in 0..<2 {
            let c = try RandomCluster(seed: 4242, params: SimParams.forSeed(4242, nodes: 5))
            c.verbose = true
            try c.run()
            traces.append(c.trace)
        }
        XCTAssertGreaterThan(traces[0].count, 100)
        XCTAssertEqual(traces[0], traces[1])
    }

    func testSimulation3Nodes() { runSeeds(nodes: 3) }
    func testSimulation5Nodes() { runSeeds(nodes: 5) }
    /// Readys handled as `RootReplica` does: saves complete later while nodes keep
    /// stepping, a leader sends before and during its save (commit capped at what its disk
    /// holds), durable committed entries apply before the save.
    func testPipelinedSimulation3Nodes() { runSeeds(nodes: 3, pipelined: true) }
    func testPipelinedSimulation5Nodes() { runSeeds(nodes: 5, pipelined: true) }

    func testPipelinedSimulationIsDeterministic() throws {
        var traces: [[String]] = []
        for _ in 0..<2 {
            var params = SimParams.forSeed(777, nodes: 3)
            params.pipelined = true
            let c = try RandomCluster(seed: 777, params: params)
            c.verbose = true
            try c.run()
            XCTAssertGreaterThan(c.stats["saves-completed-later"] ?? 0, 50, "saves really were pending while nodes stepped")
            traces.append(c.trace)
        }
        XCTAssertEqual(traces[0], traces[1])
    }
}
