import DAgentWire
import NIOCore

extension NameRules {
    /// Names starting with `@` belong to services (`@state` on the root
    /// group); no node may register one, so a route to a service can never
    /// be captured by a leaf.
    public static func reservedProblem(_ name: String) -> String? {
        guard name.utf8.first == UInt8(ascii: "@") else { return nil }
        return "name '\(name)' starts with '@', which is reserved for services (such as @state)"
    }

    /// Why `name` cannot be registered by a node: invalid or reserved; nil if it can.
    public static func registrationProblem(_ name: String) -> String? {
        problem(with: name) ?? reservedProblem(name)
    }
}

/// Authorization in the routing core: who may register what, and who may
/// send with which source. Links from children are the untrusted side: a
/// parent checks what its children claim (the child trusts its parent).
extension NodeCore {
    /// Why an envelope with `src` may not come in on link `id`, or nil. On a
    /// child link the source must be a name routed through that link (the
    /// child itself or a node below it); the parent and peer replicas are trusted.
    ///
    /// A name this node knows nowhere (a sender that has left since, e.g. the
    /// source of a message reloaded from a durable queue) is let through only
    /// on its way up: every ancestor checks it again against what it knows,
    /// up to the top, which knows every live name. Into this node's own
    /// subtree, where nobody above checks, the source must be known; so must
    /// a publish's (`dst` nil), which travels wherever interest is.
    package func sourceProblem(_ src: String, dst: String?, from id: LinkID) -> String? {
        guard let link = links[id], !link.isParent, !link.isPeer else { return nil }
        if link.queryOnly {
            return "an envelope from query-only link '\(link.peerName)' (it registered to ask for the tree only)"
        }
        if let entry = routes[src] {
            if entry.link == id {
                links[id]!.lastSource = src
                links[id]!.lastSourceVersion = routes.version
                return nil
            }
        } else if !src.isEmpty && src != config.name && !localServices.contains(src) && NameRules.reservedProblem(src) == nil
                    && (config.hasParent || authority?.peerLink(holding: src) == nil) && dst.map(goesUp) == true {
            return nil
        }
        return "an envelope from child '\(link.peerName)' claims src '\(src)', which is not in its subtree (a child may only send from names it registered)"
    }

    /// True if an envelope for `dst` leaves this node upward (or waits for the
    /// route up), or this node is the top: someone who knows more checks it.
    package func goesUp(_ dst: String) -> Bool {
        if !config.hasParent { return true }   // the top knows every live name
        switch nextHop(dst) {
        case .queue: return true
        case .link(let next): return next.link == parentLink || links[next.link]?.isPeer == true
        case .local, .noRoute: return false
        }
    }

    /// What the fast path asks of the sources of a batch from `link` to this node, checked
    /// on each envelope as it is decoded (`deliverBatch`, `deliverRaw`): any source on the
    /// parent and peer links; on a child's link, exactly the source last validated there
    /// (the batch's first source is validated now if routes changed since); none when that
    /// first source is refused, and then every envelope takes the slow path, which checks it.
    package func batchSources(_ raw: ByteBuffer, dst: String, link: LinkState) -> BatchSources {
        if link.isParent || link.isPeer { return .any }
        if link.lastSourceVersion == routes.version && !link.lastSource.isEmpty { return .exactly(link.lastSource) }
        guard let src = validFirstSource(raw, dst: dst, batch: true, link: link.id) else { return .slowPath }
        return .exactly(src)
    }

    /// The fast path's source check on undecoded bytes: true if every `src`
    /// equals the source last validated on this link and no route changed
    /// since. False sends the envelope to the slow path, which checks it.
    /// `dst` nil (a publication: its topic is no name to route): only names the
    /// child registered pass.
    @inline(__always)
    package func rawSourceAllowed(_ raw: ByteBuffer, dst: String?, batch: Bool, link: LinkState) -> Bool {
        if link.isParent || link.isPeer { return true }
        if link.lastSourceVersion == routes.version && !link.lastSource.isEmpty {
            if batch { if (try? BatchCodec.sources(of: raw, are: link.lastSource)) == true { return true } }
            else if (try? EnvelopeCodec.source(of: raw, is: link.lastSource)) == true { return true }
        }
        return revalidateSource(raw, dst: dst, batch: batch, link: link.id)
    }

    /// A source not in the cache: read it (the first envelope's, for a batch) and
    /// check it; a batch then passes only if all its sources match.
    package func revalidateSource(_ raw: ByteBuffer, dst: String?, batch: Bool, link id: LinkID) -> Bool {
        guard let src = validFirstSource(raw, dst: dst, batch: batch, link: id) else { return false }
        if batch { return (try? BatchCodec.sources(of: raw, are: src)) == true }
        return true
    }

    /// The `src` of `raw` (of its first envelope, for a batch) if `sourceProblem` allows it
    /// on link `id`; nil if it is refused or cannot be read.
    func validFirstSource(_ raw: ByteBuffer, dst: String?, batch: Bool, link id: LinkID) -> String? {
        let first: ByteBuffer
        if batch {
            guard let slice = (try? BatchCodec.envelopes(raw))?.first else { return nil }
            first = slice
        } else {
            first = raw
        }
        guard let src = try? EnvelopeCodec.source(of: first), sourceProblem(src, dst: dst, from: id) == nil else { return nil }
        return src
    }

    /// Drops an envelope with a forged (or no longer valid) source. It is not
    /// answered: an error would go to the forged name.
    package func dropForged(_ envelope: Dagent_Envelope, _ why: String) {
        stats.forgedSources &+= 1
        log(.warning, "dropped a message to '\(envelope.dst)': \(why)")
    }

    /// A new child connection: refused at once when `max_unregistered_links`
    /// connections are already waiting to register.
    package func admitUnregistered(_ id: LinkID) {
        let waiting = links.values.reduce(0) { $0 + (!$1.isParent && !$1.registered && !$1.closing ? 1 : 0) }
        if waiting > config.limits.maxUnregisteredLinks {
            refuseLink(id, .refused, "node '\(config.name)' already has max_unregistered_links=\(config.limits.maxUnregisteredLinks) connections that have not registered")
        }
    }

    /// Why a Register cannot be taken now (rate, names per child), or nil.
    package func registrationLimitProblem(_ reg: Dagent_Register, nowNs: UInt64) -> String? {
        if !registrationBucket.take(nowNs: nowNs) {
            return "node '\(config.name)' accepts at most registration_rate=\(config.limits.registrationRate)/s "
                + "(registration_burst=\(config.limits.registrationBurst)); retry later"
        }
        if reg.subtree.count + 1 > config.limits.maxNamesPerChild {
            return "'\(reg.name)' brings \(reg.subtree.count + 1) names; max_names_per_child=\(config.limits.maxNamesPerChild)"
        }
        return nil
    }

    /// The records of a NameAdded beyond `max_names_per_child` for link `id`, refused.
    package func overNameLimit(_ records: inout [Dagent_NameRecord], via id: LinkID) -> [Dagent_NameRefusal] {
        let held = routes.names(via: id)
        var room = config.limits.maxNamesPerChild - held.count
        var kept: [Dagent_NameRecord] = []
        var refused: [Dagent_NameRefusal] = []
        for record in records {
            if held.contains(record.name) {
                kept.append(record)
            } else if room > 0 {
                room -= 1
                kept.append(record)
            } else {
                refused.append(refusal(record.name, .refused, "child '\(links[id]?.peerName ?? "?")' holds \(held.count) names; max_names_per_child=\(config.limits.maxNamesPerChild)"))
            }
        }
        records = kept
        return refused
    }

    /// A query-only registration (`dagent tree`): the link counts as
    /// registered (the name passed the rules, the rate limit and, in secret
    /// mode, the handshake), but the name is not added to the tree and the
    /// link may only ask TreeRequest.
    package func acceptQueryLink(_ reg: Dagent_Register, on id: LinkID) {
        links[id]!.registered = true
        links[id]!.queryOnly = true
        links[id]!.peerName = reg.name
        links[id]!.peerHeartbeatNs = UInt64(reg.heartbeatMs) * 1_000_000
        log(.debug, "query-only link '\(reg.name)' from \(links[id]!.address)")
        var result = Dagent_RegisterResult()
        result.parentName = config.name
        result.heartbeatMs = UInt32(clamping: config.heartbeatIntervalNs / 1_000_000)
        sendFrame(id, .registerResult(result))
    }

    /// The subtree's names as `dagent tree` shows them: no sessions (nor
    /// their verifiers) ever leave the node in a tree reply.
    package var publicRecords: [Dagent_NameRecord] {
        routes.records().map { record in
            var r = record
            r.session = 0
            return r
        }
    }
}

/// The sources a batch's envelopes may carry on the fast path (`NodeCore.batchSources`).
package enum BatchSources {
    /// Any source: the link is the parent's or a peer replica's (trusted).
    case any
    /// Exactly this name, as bytes: the source validated on a child's link.
    case exactly(String)
    /// Every envelope takes the slow path.
    case slowPath
}
