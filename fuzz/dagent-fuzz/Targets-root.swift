import DAgentRaft
import DAgentRoot
import Foundation

/// DAgentRoot: the DCF bootstrap JSON (the member array of a root group).
enum RootTargets {
    static let dcf = FuzzTarget(
        name: "dcf-json",
        summary: "DCF member JSON (ClusterMeta.parse; byte 0 is the node id): ClusterMetaError or a meta that re-parses equal",
        seeds: {
            let three = """
            [{"stream_id":1,"node_id":1,"ip":"127.0.0.1","port":7101,"role":"LEADER"},
             {"stream_id":1,"node_id":2,"ip":"127.0.0.1","port":7102,"role":"FOLLOWER"},
             {"stream_id":1,"node_id":3,"ip":"::1","port":7103,"role":"FOLLOWER"}]
            """
            return [("three", [1] + Array(three.utf8)),
                    ("streams", [2] + Array(#"[{"stream_id":1,"node_id":2,"ip":"h","port":1,"role":"FOLLOWER"},{"stream_id":2,"node_id":2,"ip":"h","port":2,"role":"FOLLOWER"}]"#.utf8))]
        },
        run: { input in
            guard let id = input.bytes.first else { return }
            let json = String(decoding: input.bytes.dropFirst(), as: UTF8.self)
            let meta: ClusterMeta
            do { meta = try ClusterMeta.parse(json: json, nodeID: NodeID(id)) } catch is ClusterMetaError { return } catch {
                FuzzCheck.fail("parse threw \(type(of: error)), not ClusterMetaError: \(error)")
            }
            FuzzCheck.equal(meta.me.nodeID, NodeID(id), "own member")
            FuzzCheck.equal(Set(meta.voters).count, meta.voters.count, "unique voters")
            FuzzCheck.require(meta.difference(to: meta) == nil, "a meta differs from itself")
            guard let again = try? JSONEncoder().encode(meta.members),
                  let back = try? ClusterMeta.parse(json: String(decoding: again, as: UTF8.self), nodeID: meta.nodeID) else {
                FuzzCheck.fail("the members of a parsed meta do not parse again")
            }
            FuzzCheck.equal(back, meta, "DCF round trip")
        })
}
