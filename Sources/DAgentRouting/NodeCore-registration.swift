import DAgentWire

/// Registration: children registering with us, names propagating upward,
/// our own registration with the parent, and revocations coming down.
extension NodeCore {
    /// Why `name` (presented with `session` on `link`) cannot be accepted, or nil.
    package func conflict(name: String, session: UInt64, link: LinkID) -> String? {
        if name == config.name {
            return "name '\(name)' is the name of node '\(config.name)' itself"
        }
        guard let entry = routes[name] else { return nil }
        if entry.link == link { return nil }
        if session != 0 && entry.session == session { return nil }  // reclaim by a restarted holder
        return "name '\(name)' is already held by a live node (registered with '\(entry.parent)'); "
            + "stop that node, wait for it to expire, or pick another name"
    }

    package func refusal(_ name: String, _ code: Dagent_ErrorCode, _ reason: String) -> Dagent_NameRefusal {
        var r = Dagent_NameRefusal()
        r.name = name
        r.error = code
        r.reason = reason
        return r
    }

    /// Puts a name in the route table; if it moved from another link, tells that link.
    package func adopt(_ record: Dagent_NameRecord, via id: LinkID) {
        let old = routes.upsert(record.name, link: id, session: record.session,
                                parent: record.parent, role: record.role)
        if parentLink != nil && !parentReady { addedWhileRegistering.insert(record.name) }
        withdrawnWhileRegistering.remove(record.name)
        guard let old, old.link != id, links[old.link] != nil else { return }
        log(.info, "name '\(record.name)' reclaimed with its session; it moved from \(describe(old.link)) to \(describe(id))")
        if links[old.link]!.peerName == record.name {
            closeLink(old.link, "superseded: '\(record.name)' re-registered with its session from another link")
        } else {
            var w = Dagent_NameWithdrawn()
            w.names = [record.name]
            w.reason = "'\(record.name)' re-registered elsewhere with its session"
            sendFrame(old.link, .nameWithdrawn(w))
        }
    }

    package func handleChildRegister(_ reg: Dagent_Register, from id: LinkID, nowNs: UInt64) {
        guard let link = links[id], !link.isParent else {
            refuseLink(id, .refused, "received Register from the parent link; a parent never registers with its child")
            return
        }
        if link.registered {
            refuseLink(id, .refused, "link already registered as '\(link.peerName)'; Register sent twice")
            return
        }
        if reg.protocolVersion != WireConstants.protocolVersion {
            refuseRegistration(id, .refused, "protocol version \(reg.protocolVersion) not supported (this node speaks \(WireConstants.protocolVersion))")
            return
        }
        if let problem = NameRules.registrationProblem(reg.name) {
            refuseRegistration(id, .refused, "invalid name: \(problem)")
            return
        }
        if let problem = certificateOwnProblem(reg.name, on: id) {
            refuseRegistration(id, .refused, problem)
            return
        }
        if let problem = registrationLimitProblem(reg, nowNs: nowNs) {
            refuseRegistration(id, .refused, problem)
            return
        }
        if reg.queryOnly {
            acceptQueryLink(reg, on: id)
            return
        }
        let presented = reg.sessionSecretBytes
        if !presented.isEmpty && SessionSecret(bytes: presented) == nil {
            refuseRegistration(id, .refused, "session_secret of \(presented.count) bytes for '\(reg.name)' (must be \(SessionSecret.byteCount)); "
                               + "remove the node's session file to get a new session")
            return
        }
        let presentedSession = SessionSecret(bytes: presented)
        if childCount >= config.maxChildren {
            refuseRegistration(id, .refused, "node '\(config.name)' already has max_children=\(config.maxChildren) children")
            return
        }
        if let why = conflict(name: reg.name, session: presentedSession?.verifier ?? 0, link: id) {
            refuseRegistration(id, .nameTaken, why)
            return
        }
        let session = presentedSession ?? newSession()
        var own = Dagent_NameRecord()
        own.name = reg.name
        own.session = session.verifier
        own.parent = config.name
        own.role = reg.role
        var accepted = [own]
        var refused: [Dagent_NameRefusal] = []
        for record in reg.subtree where record.name != reg.name {
            if let problem = NameRules.registrationProblem(record.name) {
                refused.append(refusal(record.name, .refused, "invalid name: \(problem)"))
            } else if let problem = certificateSubtreeProblem(record.name, on: id, owner: reg.name) {
                refused.append(refusal(record.name, .refused, problem))
            } else if let why = conflict(name: record.name, session: record.session, link: id) {
                refused.append(refusal(record.name, .nameTaken, why))
            } else {
                accepted.append(record)
            }
        }
        links[id]!.registered = true
        links[id]!.peerName = reg.name
        links[id]!.peerHeartbeatNs = UInt64(reg.heartbeatMs) * 1_000_000
        for record in accepted { adopt(record, via: id) }
        log(.info, "child '\(reg.name)' registered from \(link.address) (session \(hex(session.verifier)), \(accepted.count - 1) name(s) below it)")
        if parentReady, let parent = parentLink {
            let requestID = sendNameAdded(accepted, to: parent)
            pendingUp[requestID] = .childRegister(link: id, name: reg.name, session: session, refusedHere: refused)
        } else if let authority {
            askAuthority(authority, accepted, via: id, .childRegister(link: id, name: reg.name, session: session, refusedHere: refused))
        } else {
            answerRegistration(id, session: session, refused: refused)
        }
    }

    package func refuseRegistration(_ id: LinkID, _ code: Dagent_ErrorCode, _ reason: String) {
        var result = Dagent_RegisterResult()
        result.error = code
        result.reason = reason
        result.parentName = config.name
        sendFrame(id, .registerResult(result))
        log(.warning, "refused registration from \(describe(id)): \(reason)")
        closeLink(id, reason)
    }

    package func answerRegistration(_ id: LinkID, session: SessionSecret?, refused: [Dagent_NameRefusal]) {
        var result = Dagent_RegisterResult()
        result.sessionSecretBytes = session?.bytes ?? []
        result.parentName = config.name
        result.epoch = routes[links[id]?.peerName ?? ""]?.epoch ?? 0
        result.refused = refused
        result.heartbeatMs = UInt32(clamping: config.heartbeatIntervalNs / 1_000_000)
        sendFrame(id, .registerResult(result))
        interestLinkReady(id)   // our side's interest follows the result
    }

    @discardableResult
    package func sendNameAdded(_ records: [Dagent_NameRecord], to parent: LinkID) -> UInt64 {
        let requestID = nextRequestID
        nextRequestID += 1
        var added = Dagent_NameAdded()
        added.requestID = requestID
        added.names = records
        sendFrame(parent, .nameAdded(added))
        return requestID
    }

    package func handleNameAdded(_ added: Dagent_NameAdded, from id: LinkID) {
        guard let link = links[id], !link.isParent, link.registered, !link.queryOnly else {
            refuseLink(id, .refused, "NameAdded from a link that has not registered (or registered query-only)")
            return
        }
        var accepted: [Dagent_NameRecord] = []
        var offered = added.names
        var refused = overNameLimit(&offered, via: id)
        for record in offered {
            if let problem = NameRules.registrationProblem(record.name) {
                refused.append(refusal(record.name, .refused, "invalid name: \(problem)"))
            } else if let problem = certificateSubtreeProblem(record.name, on: id, owner: link.peerName) {
                refused.append(refusal(record.name, .refused, problem))
            } else if let why = conflict(name: record.name, session: record.session, link: id) {
                refused.append(refusal(record.name, .nameTaken, why))
            } else {
                accepted.append(record)
            }
        }
        for record in accepted { adopt(record, via: id) }
        if parentReady, let parent = parentLink, !accepted.isEmpty {
            let requestID = sendNameAdded(accepted, to: parent)
            pendingUp[requestID] = .childNames(link: id, requestID: added.requestID, refusedHere: refused)
        } else if let authority, !accepted.isEmpty {
            askAuthority(authority, accepted, via: id, .childNames(link: id, requestID: added.requestID, refusedHere: refused))
        } else {
            sendNameAck(id, requestID: added.requestID, refused: refused)
        }
    }

    package func sendNameAck(_ id: LinkID, requestID: UInt64, refused: [Dagent_NameRefusal]) {
        var ack = Dagent_NameAck()
        ack.requestID = requestID
        ack.refused = refused
        sendFrame(id, .nameAck(ack))
    }

    /// Top of a root group: the names must be confirmed by the group's directory.
    /// `pending` is recorded first, so the authority may answer at once.
    package func askAuthority(_ authority: any TopOfTreeAuthority, _ records: [Dagent_NameRecord], via id: LinkID,
                              _ pending: PendingUp) {
        let requestID = nextRequestID
        nextRequestID += 1
        var confirmed = records
        for i in confirmed.indices where confirmed[i].parent.isEmpty { confirmed[i].parent = config.name }
        pendingUp[requestID] = pending
        authority.confirmNames(requestID: requestID, agent: links[id]?.peerName ?? "", confirmed)
    }

    /// The name authority (the root group) answered `confirmNames`.
    public func namesConfirmed(requestID: UInt64, refused: [Dagent_NameRefusal]) {
        var ack = Dagent_NameAck()
        ack.requestID = requestID
        ack.refused = refused
        completePendingUp(ack)
    }

    package func handleNameAck(_ ack: Dagent_NameAck, from id: LinkID) {
        guard id == parentLink else { return }
        completePendingUp(ack)
    }

    package func completePendingUp(_ ack: Dagent_NameAck) {
        guard let pending = pendingUp.removeValue(forKey: ack.requestID) else { return }
        // Names the upper tree refused were never accepted above: drop them here, quietly.
        var refusedNames: Set<String> = []
        for refusal in ack.refused {
            refusedNames.insert(refusal.name)
            if let entry = routes[refusal.name] { routes.remove(refusal.name, ifVia: entry.link) }
        }
        switch pending {
        case let .childRegister(link, name, session, refusedHere):
            guard links[link] != nil else { return }
            if let own = ack.refused.first(where: { $0.name == name }) {
                _ = routes.removeAll(via: link)
                refuseRegistration(link, own.error, own.reason)
            } else {
                answerRegistration(link, session: session, refused: refusedHere + ack.refused)
            }
        case let .childNames(link, requestID, refusedHere):
            guard links[link] != nil else { return }
            sendNameAck(link, requestID: requestID, refused: refusedHere + ack.refused)
        case .resync:
            for refusal in ack.refused where !refusedNames.isEmpty {
                log(.warning, "name '\(refusal.name)' refused by the upper tree: \(refusal.reason)")
            }
        }
    }

    /// The parent link dropped with acks outstanding: answer the children as
    /// accepted; the names are re-checked when we re-register.
    package func acceptPendingProvisionally() {
        let pending = pendingUp
        pendingUp = [:]
        for (_, p) in pending.sorted(by: { $0.key < $1.key }) {
            switch p {
            case let .childRegister(link, _, session, refusedHere):
                if links[link] != nil { answerRegistration(link, session: session, refused: refusedHere) }
            case let .childNames(link, requestID, refusedHere):
                if links[link] != nil { sendNameAck(link, requestID: requestID, refused: refusedHere) }
            case .resync:
                break
            }
        }
    }

    package func handleRegisterResult(_ result: Dagent_RegisterResult, from id: LinkID, nowNs: UInt64) {
        guard id == parentLink else {
            refuseLink(id, .refused, "RegisterResult from a child link")
            return
        }
        guard result.error == .ok else {
            log(.error, "registration of '\(config.name)' with \(describe(id)) refused: \(DAgentError.name(of: result.error)): \(result.reason)")
            emit(.registrationFailed(result.error, reason: result.reason))
            closeLink(id, "registration refused")
            return
        }
        if let problem = certificateParentProblem(result.parentName, on: id) {
            log(.error, "registration of '\(config.name)' with \(describe(id)) not accepted: \(problem)")
            closeLink(id, problem)
            return
        }
        if let issued = SessionSecret(bytes: result.sessionSecretBytes) { sessionSecret = issued }
        parentName = result.parentName
        parentReady = true
        links[id]!.registered = true
        links[id]!.peerName = result.parentName
        links[id]!.peerHeartbeatNs = UInt64(result.heartbeatMs) * 1_000_000
        // Names below us that the upper tree refused: revoke them down there.
        for refusal in result.refused {
            guard let entry = routes[refusal.name] else { continue }
            routes.remove(refusal.name, ifVia: entry.link)
            var w = Dagent_NameWithdrawn()
            w.names = [refusal.name]
            w.reason = refusal.reason
            sendFrame(entry.link, .nameWithdrawn(w))
            log(.warning, "name '\(refusal.name)' revoked: \(refusal.reason)")
        }
        // Catch the parent up on changes made while the registration was in flight.
        let added = addedWhileRegistering.compactMap { name -> Dagent_NameRecord? in
            guard let e = routes[name] else { return nil }
            var r = Dagent_NameRecord()
            r.name = name
            r.session = e.session
            r.epoch = e.epoch
            r.parent = e.parent
            r.role = e.role
            return r
        }.sorted { $0.name < $1.name }
        if !added.isEmpty { pendingUp[sendNameAdded(added, to: id)] = .resync }
        let gone = withdrawnWhileRegistering.filter { routes[$0] == nil }.sorted()
        if !gone.isEmpty {
            var w = Dagent_NameWithdrawn()
            w.names = gone
            w.reason = "left while the parent link was re-registering"
            sendFrame(id, .nameWithdrawn(w))
        }
        addedWhileRegistering = []
        withdrawnWhileRegistering = []
        interestLinkReady(id)   // tell the parent our subtree's interest
        log(.info, "registered '\(config.name)' with '\(result.parentName)' (session \(hex(session)))")
        emit(.registered(session: session, parent: result.parentName))
        flushQueues(nowNs: nowNs)
        emit(.parentReady)
    }

    package func handleNameWithdrawn(_ withdrawn: Dagent_NameWithdrawn, from id: LinkID) {
        guard let link = links[id] else { return }
        if link.isParent {
            // Revocation from above: pass it down to whoever holds the names.
            for name in withdrawn.names {
                if name == config.name {
                    log(.error, "parent revoked our name '\(name)': \(withdrawn.reason)")
                    emit(.registrationFailed(.nameTaken, reason: withdrawn.reason))
                } else if let entry = routes[name] {
                    routes.remove(name, ifVia: entry.link)
                    var w = Dagent_NameWithdrawn()
                    w.names = [name]
                    w.reason = withdrawn.reason
                    sendFrame(entry.link, .nameWithdrawn(w))
                }
            }
            return
        }
        guard link.registered else { return }
        let removed = withdrawn.names.filter { routes.remove($0, ifVia: id) != nil }
        propagateWithdrawn(removed, reason: withdrawn.reason)
    }

    package func propagateWithdrawn(_ names: [String], reason: String) {
        guard !names.isEmpty else { return }
        if let authority, !config.hasParent {
            authority.releaseNames(names)
        } else if parentReady, let parent = parentLink {
            var w = Dagent_NameWithdrawn()
            w.names = names
            w.reason = reason
            sendFrame(parent, .nameWithdrawn(w))
        } else if parentLink != nil {
            for name in names {
                withdrawnWhileRegistering.insert(name)
                addedWhileRegistering.remove(name)
            }
        }
    }
}

package func hex(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 16 - s.count)) + s
}
