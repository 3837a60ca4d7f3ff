import NIOSSL
import X509

/// Reads the DNS subject alternative names of a certificate: what dagent takes
/// as the names a peer may hold (see `CertificateNames`).
public enum CertificateSANs {
    public static func dnsNames(of certificate: Certificate) -> [String] {
        guard let sans = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return sans.compactMap { if case .dnsName(let n) = $0 { return n } else { return nil } }
    }

    /// The DNS SANs of a peer certificate as BoringSSL hands it over (nil if it does not parse).
    public static func dnsNames(of certificate: NIOSSLCertificate) -> [String]? {
        guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return nil }
        return dnsNames(of: parsed)
    }
}
