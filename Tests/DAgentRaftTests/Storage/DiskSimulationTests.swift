import DAgentRaft
import Foundation
import XCTest
@testable import DAgentRaftStorage
import DAgentTestSupport

/// The randomized cluster simulation with every node on a real `DiskStorage` (temp dir,
/// real fsync, small segments so rollover and segment removal happen), including crashes
/// injected at random persistence steps. Besides the Raft safety checks, every restart
/// verifies that the reopened storage lost nothing that was acknowledged.
/// `RAFT_DISK_SIM_SEEDS` overrides the number of seeds per cluster size.
final class DiskSimulationTests: TempDirTestCase {
    func testSimulationOnDiskStorageWithCrashes() throws {
        let seeds = Int(ProcessInfo.processInfo.environment["RAFT_DISK_SIM_SEEDS"] ?? "") ?? 3
        var totals: [String: Int] = [:]
        let began = Date()
        for (nodes, seed) in (1...UInt64(seeds)).flatMap({ s in [(3, s), (5, 100 + s)] }) {
            var params = SimParams.forSeed(seed, nodes: nodes)
            params.chaosTicks = 150
            params.diskRoot = tmp + "/sim-\(nodes)-\(seed)"
            params.diskCrashRate = 0.004
            params.compactEvery = 10
            let cluster = try RandomCluster(seed: seed, params: params)
            do {
                try cluster.run()
            } catch {
                XCTFail("disk simulation failed: nodes=\(nodes) seed=\(seed) (\(params.summary)): \(error)\n" +
                        cluster.trace.suffix(40).joined(separator: "\n"))
            }
            for (k, v) in cluster.stats { totals[k, default: 0] += v }
        }
        print(String(format: "raft disk simulation: %d seeds x {3,5} nodes in %.1fs; ", seeds, Date().timeIntervalSince(began)) +
              totals.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        XCTAssertGreaterThan(totals["crash-in-storage"] ?? 0, 0, "crashes inside persistence were exercised")
        XCTAssertGreaterThan(totals["storage-reopens"] ?? 0, 0)
    }
}
