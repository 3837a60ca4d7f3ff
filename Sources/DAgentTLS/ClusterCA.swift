import Crypto
import Foundation
import X509

/// The cluster CA behind `dagent certs`: creates a CA (`init`) and issues node
/// certificates (`issue`), with P-256 keys, in PEM. No `openssl` involved.
///
/// A node certificate carries its node name as a DNS SAN, and may carry more
/// SANs (`*.NAME` lets the node bring its subtree; `@raft.STREAM.ID` makes it
/// a Raft replica: see `CertificateNames`). It is valid for both TLS client and
/// server use, since a node dials its parent and accepts its children.
public enum ClusterCA {
    public static let certFile = "ca.crt"
    public static let keyFile = "ca.key"

    /// What `init`/`issue` wrote.
    public struct Written: Sendable {
        public var cert: String
        public var key: String
        public var names: [String]
        public var notAfter: Date
        public var serial: String
    }

    /// Creates `dir/ca.crt` and `dir/ca.key` (mode 0600). Refuses to replace an existing CA
    /// unless `force`: every certificate it issued would stop being trusted.
    public static func create(in dir: String, commonName: String = "dagent cluster CA", days: Int = 3650,
                              force: Bool = false) throws(TLSError) -> Written {
        let certPath = (dir as NSString).appendingPathComponent(certFile)
        let keyPath = (dir as NSString).appendingPathComponent(keyFile)
        if !force, FileManager.default.fileExists(atPath: keyPath) || FileManager.default.fileExists(atPath: certPath) {
            throw TLSError("\(dir) already holds a CA (\(certFile)/\(keyFile)); replacing it would untrust every certificate it issued (give --force to do it anyway)")
        }
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let name = try wrap { try DistinguishedName { CommonName(commonName) } }
        let now = Date()
        let notAfter = now.addingTimeInterval(Double(days) * 86_400)
        let serial = Certificate.SerialNumber()
        let cert = try wrap {
            try Certificate(
                version: .v3, serialNumber: serial, publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-300), notValidAfter: notAfter,
                issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                },
                issuerPrivateKey: .init(key))
        }
        try makeDirectory(dir)
        try write(try wrap { try cert.serializeAsPEM().pemString }, to: certPath, mode: 0o644)
        try write(key.pemRepresentation, to: keyPath, mode: 0o600)
        return Written(cert: certPath, key: keyPath, names: [], notAfter: notAfter, serial: "\(serial)")
    }

    /// Issues a certificate for node `name` (SANs: `name`, then `extraNames`) signed by the CA
    /// in `caDir`; writes `outDir/NAME.crt` and `outDir/NAME.key` (mode 0600).
    public static func issue(caDir: String, name: String, extraNames: [String] = [], outDir: String,
                             days: Int = 825, force: Bool = false) throws(TLSError) -> Written {
        if let problem = CertificateNameSyntax.problem(name) { throw TLSError("--name: \(problem)") }
        for san in extraNames {
            if let problem = CertificateNameSyntax.problem(san, wildcardAllowed: true) { throw TLSError("--san: \(problem)") }
        }
        let caCertPath = (caDir as NSString).appendingPathComponent(certFile)
        let caKeyPath = (caDir as NSString).appendingPathComponent(keyFile)
        let caPEM = try TLSFiles.read(caCertPath, "--ca")
        let caCert = try TLSFiles.certificates(caPEM, caCertPath, "--ca")[0]
        let caKeyPEM = try TLSFiles.read(caKeyPath, "--ca")
        let caKey: Certificate.PrivateKey
        do { caKey = try Certificate.PrivateKey(pemEncoded: caKeyPEM) } catch {
            throw TLSError("--ca: \(caKeyPath) is not a PEM private key: \(error)")
        }
        guard caKey.publicKey == caCert.publicKey else {
            throw TLSError("--ca: \(caKeyPath) does not belong to \(caCertPath)")
        }
        let file = name.replacingOccurrences(of: "/", with: "_")
        let certPath = (outDir as NSString).appendingPathComponent("\(file).crt")
        let keyPath = (outDir as NSString).appendingPathComponent("\(file).key")
        if !force, FileManager.default.fileExists(atPath: certPath) || FileManager.default.fileExists(atPath: keyPath) {
            throw TLSError("\(certPath) or \(keyPath) exists already (give --force to replace them)")
        }
        var names = [name]
        for n in extraNames where !names.contains(n) { names.append(n) }
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let now = Date()
        let notAfter = now.addingTimeInterval(Double(days) * 86_400)
        let serial = Certificate.SerialNumber()
        let caSKI = (try? caCert.extensions.subjectKeyIdentifier)?.keyIdentifier
        let cert = try wrap {
            try Certificate(
                version: .v3, serialNumber: serial, publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-300), notValidAfter: notAfter,
                issuer: caCert.subject, subject: try DistinguishedName { CommonName(name) },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth, .clientAuth])
                    SubjectAlternativeNames(names.map { .dnsName($0) })
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: caSKI)
                },
                issuerPrivateKey: caKey)
        }
        try makeDirectory(outDir)
        try write(try wrap { try cert.serializeAsPEM().pemString }, to: certPath, mode: 0o644)
        try write(key.pemRepresentation, to: keyPath, mode: 0o600)
        return Written(cert: certPath, key: keyPath, names: names, notAfter: notAfter, serial: "\(serial)")
    }

    static func wrap<T>(_ body: () throws -> T) throws(TLSError) -> T {
        do { return try body() } catch let e as TLSError { throw e } catch { throw TLSError("certificate: \(error)") }
    }

    static func makeDirectory(_ dir: String) throws(TLSError) {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw TLSError("cannot create \(dir): \(error.localizedDescription)")
        }
    }

    static func write(_ text: String, to path: String, mode: Int) throws(TLSError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode_t(mode))
        guard fd >= 0 else { throw TLSError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        fchmod(fd, mode_t(mode))
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw TLSError("cannot write \(path): \(String(cString: strerror(errno)))") }
            done += n
        }
        guard fsync(fd) == 0 else { throw TLSError("cannot fsync \(path): \(String(cString: strerror(errno)))") }
    }
}

/// What may stand in a certificate name: a node name (the characters of tree
/// names) or, with `wildcardAllowed`, `*.NAME`.
public enum CertificateNameSyntax {
    public static func problem(_ name: String, wildcardAllowed: Bool = false) -> String? {
        var body = Substring(name)
        if name.hasPrefix("*.") {
            guard wildcardAllowed else { return "'\(name)' is a wildcard; a node's own name must be exact" }
            body = name.dropFirst(2)
        }
        if body.isEmpty { return "name is empty" }
        if body.utf8.count > 255 { return "'\(name.prefix(40))…' is longer than 255 bytes" }
        for scalar in body.unicodeScalars {
            let ok = (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z")
                || (scalar >= "0" && scalar <= "9") || ".-_:/@".unicodeScalars.contains(scalar)
            if !ok { return "'\(name)' contains '\(scalar)'; allowed: letters, digits and . - _ : / @ (and a leading *. in --san)" }
        }
        return nil
    }
}
