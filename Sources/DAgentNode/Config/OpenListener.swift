/// The start-up check for a listener anyone on the network can reach with no
/// authentication: a tree listener on a non-loopback address, with neither
/// TLS nor a cluster secret, lets any host that reaches the port join the
/// tree. The node still starts (a private network may be what protects it),
/// but it says so.
public enum OpenListener {
    /// True for 127.0.0.0/8, ::1 and `localhost`.
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// The warning for listening on `endpoint`, or nil (loopback, message
    /// queues, or authenticated by a secret or TLS).
    public static func warning(for endpoint: Endpoint, secret: Bool, tls: Bool) -> String? {
        guard case let .tcp(host, _) = endpoint, !isLoopback(host), !secret, !tls else { return nil }
        return "listening on \(endpoint), which is not a loopback address, with neither TLS nor a cluster secret: "
            + "any host that reaches this port can join the tree. Set secret_file (see docs/security.md), "
            + "or listen on 127.0.0.1 behind a firewall"
    }
}
