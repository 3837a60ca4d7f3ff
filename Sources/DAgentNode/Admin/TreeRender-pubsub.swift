import DAgentWire
import Foundation

/// The pub/sub part of `dagent tree`: interest per link, this node's
/// subscriptions and its publish counters.
extension TreeRender {
    /// ` interest=N [p1 p2 …] pub=X drops=Y` for a link line ("" when it has none).
    static func pubsubSuffix(_ link: Dagent_LinkInfo) -> String {
        guard link.interestEntries > 0 || link.publishesOut > 0 || link.publishDrops > 0 else { return "" }
        var s = "  interest=\(link.interestEntries)"
        if !link.interest.isEmpty {
            let shown = link.interest.prefix(6).map(entryText).joined(separator: " ")
            s += " [\(shown)\(link.interestEntries > 6 ? " …" : "")]"
        }
        s += " pub=\(link.publishesOut)"
        if link.publishDrops > 0 { s += " drops=\(link.publishDrops)" }
        return s
    }

    static func entryText(_ e: Dagent_InterestEntry) -> String {
        (e.queue.isEmpty ? e.pattern : "\(e.pattern)@\(e.queue)") + (e.count > 1 ? "×\(e.count)" : "")
    }

    /// Lines after the name tree: links that are not tree links below us
    /// (peer replicas) with interest, the node's subscriptions, counters.
    static func pubsubLines(_ reply: Dagent_TreeReply) -> [String] {
        var lines: [String] = []
        let names = Set(reply.names.map(\.name))
        for link in reply.links where !link.isParent && !names.contains(link.peer) {
            let suffix = pubsubSuffix(link)
            if !suffix.isEmpty { lines.append("link \(link.peer.isEmpty ? "?" : link.peer) \(link.address)\(suffix)") }
        }
        let p = reply.pubsub
        guard reply.subscriptionCount > 0 || p.published > 0 || p.forwarded > 0 || p.delivered > 0
            || p.unwanted > 0 || p.interestUpdates > 0 else { return lines }
        if reply.subscriptionCount > 0 {
            let shown = reply.subscriptions.prefix(8).map(entryText).joined(separator: " ")
            lines.append("subscriptions: \(reply.subscriptionCount) [\(shown)\(reply.subscriptions.count > 8 ? " …" : "")]")
        }
        var counters = "pubsub: published=\(p.published) delivered=\(p.delivered) forwarded=\(p.forwarded) unwanted=\(p.unwanted)"
        counters += " dropped_slow=\(p.droppedSlow) dropped_bad=\(p.droppedBad)"
        if p.interestRefused > 0 { counters += " interest_refused=\(p.interestRefused)" }
        lines.append(counters)
        return lines
    }

    static func entryJSON(_ e: Dagent_InterestEntry, _ q: (String) -> String) -> String {
        "{\"pattern\":\(q(e.pattern)),\"queue\":\(q(e.queue)),\"count\":\(e.count)}"
    }

    /// `,"interest":[...],"interest_entries":N,"publishes_out":X,"publish_drops":Y` for a link object.
    static func pubsubLinkJSON(_ link: Dagent_LinkInfo, _ q: (String) -> String) -> String {
        ",\"interest\":[\(link.interest.map { entryJSON($0, q) }.joined(separator: ","))],\"interest_entries\":\(link.interestEntries)"
            + ",\"publishes_out\":\(link.publishesOut),\"publish_drops\":\(link.publishDrops)"
    }

    /// `,"subscriptions":[...],"subscription_count":N,"pubsub":{...}` for the top object.
    static func pubsubJSON(_ reply: Dagent_TreeReply, _ q: (String) -> String) -> String {
        let p = reply.pubsub
        return ",\"subscriptions\":[\(reply.subscriptions.map { entryJSON($0, q) }.joined(separator: ","))],\"subscription_count\":\(reply.subscriptionCount)"
            + ",\"pubsub\":{\"published\":\(p.published),\"delivered\":\(p.delivered),\"forwarded\":\(p.forwarded),\"unwanted\":\(p.unwanted)"
            + ",\"dropped_slow\":\(p.droppedSlow),\"dropped_bad\":\(p.droppedBad),\"interest_refused\":\(p.interestRefused),\"interest_updates\":\(p.interestUpdates)}"
    }
}
