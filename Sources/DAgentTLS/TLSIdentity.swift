import NIOSSL

/// A loaded, checked TLS identity: what both ends of a link need to build
/// their `NIOSSLContext`s. Mutual TLS 1.3 only; the peer's certificate must
/// chain to `authorities` (the cluster CA). Host names are not checked by
/// BoringSSL: dagent checks the peer's SANs against the names it registers
/// (`CertificateNames` in the routing core) or, for Raft peers, its replica identity.
public struct TLSIdentity: @unchecked Sendable {
    public let files: TLSFiles
    let chain: [NIOSSLCertificate]
    let key: NIOSSLPrivateKey
    let authorities: [NIOSSLCertificate]
    /// The DNS SANs of this node's own certificate.
    public let names: [String]

    func configuration(server: Bool) -> TLSConfiguration {
        var c = server
            ? TLSConfiguration.makeServerConfigurationWithMTLS(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key),
                trustRoots: .certificates(authorities))
            : TLSConfiguration.makeClientConfiguration()
        if !server {
            c.certificateChain = chain.map { .certificate($0) }
            c.privateKey = .privateKey(key)
            c.trustRoots = .certificates(authorities)
        }
        c.certificateVerification = .noHostnameVerification
        c.minimumTLSVersion = .tlsv13
        // A closing link waits this long for the peer's close_notify (a node stops promptly).
        c.shutdownTimeout = .seconds(1)
        return c
    }

    /// The server and client contexts (built once per node; BoringSSL contexts are shareable).
    public func contexts() throws(TLSError) -> TLSContexts {
        do {
            return TLSContexts(server: try NIOSSLContext(configuration: configuration(server: true)),
                               client: try NIOSSLContext(configuration: configuration(server: false)),
                               names: names)
        } catch {
            throw TLSError("tls: cannot build a TLS context from \(files): \(error)")
        }
    }
}

/// A node's two TLS contexts: `server` for the links it accepts, `client` for those it dials.
public struct TLSContexts: @unchecked Sendable {
    public let server: NIOSSLContext
    public let client: NIOSSLContext
    /// The DNS SANs of this node's own certificate.
    public let names: [String]
}
