import NIOCore
import NIOSSL
import NIOTLS

/// Sits after the `NIOSSLHandler` of a link and holds `channelActive` back
/// until the TLS handshake is done, so the link handler behind it only sees a
/// link whose peer proved its certificate. It then reads the peer's DNS SANs,
/// lets `check` refuse them (a dialed Raft peer must be the replica it was
/// dialed for), hands them to `verified`, lets `channelActive` through and
/// leaves the pipeline. A failed handshake or check goes to `failed` (once) and
/// closes the channel; the link never comes up.
public final class TLSIdentityGate: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny

    private let check: ([String]) -> String?
    private let verified: ([String]) -> Void
    private let failed: (String) -> Void
    private var done = false
    private var reported = false

    public init(check: @escaping ([String]) -> String? = { _ in nil },
                verified: @escaping ([String]) -> Void, failed: @escaping (String) -> Void) {
        self.check = check
        self.verified = verified
        self.failed = failed
    }

    public func channelActive(context: ChannelHandlerContext) {
        // Held until the handshake completes.
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case TLSUserEvent.handshakeCompleted = event, !done else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
        guard let names = certificate.flatMap({ CertificateSANs.dnsNames(of: $0) }) else {
            fail(context, "the peer's certificate could not be read")
            return
        }
        if let problem = check(names) {
            fail(context, problem)
            return
        }
        done = true
        verified(names)
        context.fireChannelActive()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !done {
            fail(context, TLSErrorText.describe(error))
            return
        }
        context.fireErrorCaught(error)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if !done { report("the connection closed during the TLS handshake") }
        context.fireChannelInactive()
    }

    private func fail(_ context: ChannelHandlerContext, _ why: String) {
        report(why)
        context.close(promise: nil)
    }

    private func report(_ why: String) {
        guard !reported else { return }
        reported = true
        failed(why)
    }
}

/// Short texts for BoringSSL's errors (the raw ones are long error stacks).
public enum TLSErrorText {
    public static func describe(_ error: Error) -> String {
        let raw = "\(error)"
        if raw.contains("CERTIFICATE_VERIFY_FAILED") {
            return "TLS handshake failed: the peer's certificate was not issued by the cluster CA (\(raw))"
        }
        if raw.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") || raw.contains("CERTIFICATE_REQUIRED") {
            return "TLS handshake failed: the peer presented no certificate (\(raw))"
        }
        if raw.contains("WRONG_VERSION_NUMBER") || raw.contains("HTTP_REQUEST") {
            return "TLS handshake failed: the peer does not speak TLS (\(raw))"
        }
        return "TLS handshake failed: \(raw)"
    }
}
