import Foundation
import DAgentRouting

/// Reads the cluster secret from a file (`secret_file:`, `--secret-file`), so
/// that it is not on the command line (`ps`) or in a config file that is
/// shared. The file must belong to this user and be readable by no one else
/// (mode 0600 or 0400), like an ssh key; the secret is its content without
/// the trailing newline.
public enum SecretFile {
    /// Secrets shorter than this are refused (HMAC keys should be long and random).
    public static let minimumBytes = 16

    /// The secret in `path`, or a `ConfigError` that names `label`, the path and the fix.
    public static func read(_ path: String, label: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw ConfigError("\(label): cannot read the secret file \(path): \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw ConfigError("\(label): the secret file \(path) is not a regular file")
        }
        let mode = st.st_mode & 0o777
        if mode & 0o077 != 0 {
            throw ConfigError("\(label): the secret file \(path) is readable or writable by others (mode \(String(mode, radix: 8))); "
                              + "run: chmod 600 \(path)")
        }
        if st.st_uid != getuid() {
            throw ConfigError("\(label): the secret file \(path) belongs to uid \(st.st_uid), not to this user (uid \(getuid()))")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("\(label): cannot read the secret file \(path)")
        }
        var text = String(decoding: data, as: UTF8.self)
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        if text.utf8.count < minimumBytes {
            throw ConfigError("\(label): the secret in \(path) has \(text.utf8.count) bytes; use at least \(minimumBytes) random bytes "
                              + "(e.g. head -c 32 /dev/urandom | base64 > \(path))")
        }
        return text
    }
}
