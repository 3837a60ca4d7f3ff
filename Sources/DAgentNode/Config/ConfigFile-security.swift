import DAgentRouting

/// The YAML options of authentication and limits (docs/security.md).
extension ConfigFile {
    static let securityKeys: Set<String> = [
        "max_names_per_child", "max_unregistered_links", "registration_rate", "registration_burst",
        "max_pending_requests", "max_watches_per_client",
    ]

    static func parseSecurity(_ map: [String: Any], source: String, into c: inout NodeConfig,
                              int: (String) throws -> Int?, num: (String) throws -> Double?,
                              str: (String) throws -> String?) throws {
        if let v = try int("max_names_per_child") { c.limits.maxNamesPerChild = v }
        if let v = try int("max_unregistered_links") { c.limits.maxUnregisteredLinks = v }
        if let v = try num("registration_rate") { c.limits.registrationRate = v }
        if let v = try int("registration_burst") { c.limits.registrationBurst = v }
        if let v = try int("max_pending_requests") { c.maxPendingRequests = v }
        if let v = try int("max_watches_per_client") { c.maxWatchesPerClient = v }
    }
}

