import Foundation
import NIOSSL
import X509

/// The PEM files of a node's TLS identity: its certificate (`cert`, the leaf
/// first, intermediates may follow), its private key (`key`) and the cluster
/// CA that every peer's certificate must chain to (`ca`). Config: `tls: {cert, key, ca}`.
public struct TLSFiles: Sendable, Equatable, CustomStringConvertible {
    public var cert: String
    public var key: String
    public var ca: String

    public init(cert: String, key: String, ca: String) {
        self.cert = cert
        self.key = key
        self.ca = ca
    }

    public var description: String { "{cert: \(cert), key: \(key), ca: \(ca)}" }

    /// The files with relative paths taken from `dir` (default: the current directory), `~` expanded.
    public func absolute(relativeTo dir: String = FileManager.default.currentDirectoryPath) -> TLSFiles {
        func abs(_ p: String) -> String {
            let expanded = (p as NSString).expandingTildeInPath
            if expanded.isEmpty || expanded.hasPrefix("/") { return expanded }
            return URL(fileURLWithPath: dir).appendingPathComponent(expanded).standardizedFileURL.path
        }
        return TLSFiles(cert: abs(cert), key: abs(key), ca: abs(ca))
    }

    /// Reads and checks the three files: each exists and is PEM of the right
    /// kind, the key belongs to the certificate, and the certificate was
    /// signed by one of the CA certificates. Errors name the option and the file.
    public func load() throws(TLSError) -> TLSIdentity {
        let certPEM = try Self.read(cert, "tls.cert")
        let keyPEM = try Self.read(key, "tls.key")
        let caPEM = try Self.read(ca, "tls.ca")
        let chain = try Self.certificates(certPEM, cert, "tls.cert")
        let authorities = try Self.certificates(caPEM, ca, "tls.ca")
        let privateKey: Certificate.PrivateKey
        do {
            privateKey = try Certificate.PrivateKey(pemEncoded: keyPEM)
        } catch {
            throw TLSError("tls.key: \(key) is not a PEM private key (EC, PKCS#8 or RSA): \(error)")
        }
        guard privateKey.publicKey == chain[0].publicKey else {
            throw TLSError("tls.key: \(key) does not match the certificate \(cert) (its public key differs); "
                + "give the key that was issued with this certificate")
        }
        guard authorities.contains(where: { $0.subject == chain[0].issuer }) || chain.count > 1 else {
            throw TLSError("tls.cert: \(cert) was not issued by the CA in tls.ca \(ca) "
                + "(issuer \(chain[0].issuer), CA \(authorities.map { "\($0.subject)" }.joined(separator: ", ")))")
        }
        do {
            let nioChain = try NIOSSLCertificate.fromPEMBytes(Array(certPEM.utf8))
            let nioKey = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
            let nioCA = try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8))
            return TLSIdentity(files: self, chain: nioChain, key: nioKey, authorities: nioCA,
                               names: CertificateSANs.dnsNames(of: chain[0]))
        } catch {
            throw TLSError("tls: BoringSSL refused \(self): \(error)")
        }
    }

    static func read(_ path: String, _ option: String) throws(TLSError) -> String {
        guard !path.isEmpty else { throw TLSError("\(option) is empty; tls needs cert, key and ca") }
        guard FileManager.default.fileExists(atPath: path) else { throw TLSError("\(option): \(path) does not exist") }
        guard let data = FileManager.default.contents(atPath: path) else { throw TLSError("\(option): cannot read \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw TLSError("\(option): \(path) is not PEM text") }
        return text
    }

    static func certificates(_ pem: String, _ path: String, _ option: String) throws(TLSError) -> [Certificate] {
        let blocks = pemBlocks(pem, label: "CERTIFICATE")
        guard !blocks.isEmpty else {
            throw TLSError("\(option): \(path) holds no PEM certificate (no '-----BEGIN CERTIFICATE-----' block)")
        }
        do {
            return try blocks.map { try Certificate(pemEncoded: $0) }
        } catch {
            throw TLSError("\(option): \(path) has a PEM certificate that does not parse: \(error)")
        }
    }

    /// The `-----BEGIN label-----` … `-----END label-----` blocks of a PEM text, in order.
    static func pemBlocks(_ pem: String, label: String) -> [String] {
        let begin = "-----BEGIN \(label)-----", end = "-----END \(label)-----"
        var blocks: [String] = []
        var rest = Substring(pem)
        while let b = rest.range(of: begin), let e = rest.range(of: end, range: b.upperBound..<rest.endIndex) {
            blocks.append(String(rest[b.lowerBound..<e.upperBound]))
            rest = rest[e.upperBound...]
        }
        return blocks
    }
}

/// A TLS configuration problem; the message names the option and the file.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
