import DAgentWire
import NIOCore

/// Secret mode: the cluster-secret handshake (`AuthHandshake`) that every link
/// runs before anything else when the node has a `secret`. Until it is done a
/// link carries nothing but the handshake: a dialer holds back its Register
/// or PeerHello, a listener takes no Register, PeerHello, tree query or
/// message. A listener without a secret answers an AuthHello with a proof-less
/// challenge, so a dialer that requires the secret refuses it at once.
extension NodeCore {
    /// True once `id`'s handshake is done (or none was needed); false for an unknown link.
    public func linkIsAuthenticated(_ id: LinkID) -> Bool { links[id]?.authPending == false }

    /// A link this node dialed: in secret mode, say AuthHello and send `first`
    /// (Register, PeerHello) once the listener proved it knows the secret.
    package func authenticateThenSend(_ id: LinkID, _ first: Dagent_Frame.OneOf_Body) {
        guard !config.secret.isEmpty else {
            sendAuthenticated(id, first)
            return
        }
        let handshake = AuthHandshake(role: .dialer, secret: config.secret, nonce: authNonce())
        links[id]!.authPending = true
        handshakes[id] = handshake
        afterAuth[id] = first
        sendFrame(id, .authHello(handshake.hello()))
    }

    /// A link a peer dialed: in secret mode, wait for its AuthHello.
    package func expectAuthentication(_ id: LinkID) {
        guard !config.secret.isEmpty, links[id] != nil else { return }
        links[id]!.authPending = true
        handshakes[id] = AuthHandshake(role: .listener, secret: config.secret, nonce: authNonce())
    }

    package func sendAuthenticated(_ id: LinkID, _ first: Dagent_Frame.OneOf_Body) {
        sendFrame(id, first)
        // One interest link per replica pair (several streams may share a pair of processes).
        if case .peerHello(let hello) = first, authority?.peerCarriesInterest(hello) ?? true { interestLinkReady(id) }
    }

    /// Bytes on a link whose handshake runs: only control frames are read.
    package func receiveBeforeAuthentication(_ frameBody: ByteBuffer, from id: LinkID, nowNs: UInt64) {
        do {
            if case let .control(frame) = try InboundFrame.classify(frameBody) {
                receiveDuringAuthentication(frame, from: id, nowNs: nowNs)
            } else {
                refuseUnauthenticated(id, "a message")
            }
        } catch {
            badFrame(id, error)
        }
    }

    /// A frame on a link whose handshake runs.
    package func receiveDuringAuthentication(_ frame: Dagent_Frame, from id: LinkID, nowNs: UInt64) {
        guard links[id] != nil else { return }
        links[id]!.lastHeardNs = nowNs
        links[id]!.framesIn &+= 1
        switch frame.body {
        case .authHello?, .authChallenge?, .authProof?:
            guard var handshake = handshakes[id] else { return }
            let step = handshake.receive(frame.body)
            handshakes[id] = handshake
            switch step {
            case .send(let body):
                sendFrame(id, body)
            case .authenticated(let body):
                handshakes[id] = nil
                links[id]!.authPending = false
                if let body { sendFrame(id, body) }
                log(.debug, "\(describe(id)) proved it knows the cluster secret")
                if let first = afterAuth.removeValue(forKey: id) { sendAuthenticated(id, first) }
            case .failed(let why):
                handshakes[id] = nil
                authenticationFailed(id, why)
            }
        case .heartbeat?:
            break
        case .linkError(let error)?:
            linkErrorReceived(error, from: id)
        case .register(let reg)?:
            refuseRegistration(id, .unauthenticated, "node '\(config.name)' requires the cluster secret: '\(reg.name)' must "
                               + "authenticate (HMAC handshake) before it registers; give it the same secret_file")
        default:
            refuseUnauthenticated(id, frame.body.map { "\($0)".prefix(40).description } ?? "an empty frame")
        }
    }

    package func refuseUnauthenticated(_ id: LinkID, _ what: String) {
        let reason = links[id]?.isParent == true
            ? "the parent sent \(what) before proving it knows the cluster secret"
            : "\(what) before the cluster secret handshake; node '\(config.name)' requires the cluster secret (secret_file)"
        authenticationFailed(id, reason)
    }

    /// The peer on `id` failed the handshake: refuse it. A parent that did not
    /// prove itself fails our registration (and is not retried).
    package func authenticationFailed(_ id: LinkID, _ why: String) {
        guard let link = links[id] else { return }
        if link.isParent {
            let reason = "parent \(link.address) refused: \(why); not registering with it"
            var error = Dagent_LinkError()
            error.error = .unauthenticated
            error.reason = "node '\(config.name)' refuses this link: \(why)"
            sendFrame(id, .linkError(error))
            log(.error, reason)
            emit(.registrationFailed(.unauthenticated, reason: reason))
            closeLink(id, reason)
        } else {
            refuseLink(id, .unauthenticated, "cluster secret handshake with \(link.address) failed: \(why)")
        }
    }

    /// A LinkError from the peer. On our parent link before the parent accepted
    /// us, an authentication failure fails the registration with its reason.
    package func linkErrorReceived(_ error: Dagent_LinkError, from id: LinkID) {
        if id == parentLink && !parentReady && error.error == .unauthenticated {
            let reason = "parent \(links[id]?.address ?? "") refused: \(error.reason)"
            log(.error, reason)
            emit(.registrationFailed(.unauthenticated, reason: reason))
            closeLink(id, reason)
            return
        }
        log(.warning, "peer \(describe(id)) reports \(DAgentError.name(of: error.error)): \(error.reason)")
    }

    /// A handshake frame on a link that is not running one. A listener without
    /// a secret answers AuthHello with a proof-less challenge (the dialer then
    /// knows this node has no secret); anything else is refused.
    package func authenticationFrameAfterwards(_ frame: Dagent_Frame, from id: LinkID) {
        guard let link = links[id] else { return }
        if case .authHello? = frame.body, config.secret.isEmpty, !link.isParent, !link.registered {
            sendFrame(id, .authChallenge(AuthHandshake.noSecretChallenge(nonce: authNonce())))
            return
        }
        refuseLink(id, .unauthenticated, "a cluster secret handshake frame on a link that is not authenticating")
    }
}
