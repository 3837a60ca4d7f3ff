import Dispatch
import Foundation
import Logging

/// SIGINT and SIGTERM for `dagent run`, caught from before the node starts. A signal that
/// arrives while the node registers or the plugin host starts is remembered (`done` is
/// signalled) and the node stops as soon as it is up. (Installed after the node had registered,
/// a SIGTERM sent by a test or a supervisor that saw the registration could arrive after
/// `SIG_IGN` and before the source was live, and was lost: the process ran on until SIGKILL.)
final class StopSignals: @unchecked Sendable {
    let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var _logger: Logger?
    private var sources: [DispatchSourceSignal] = []

    /// The node's logger, once there is a node (before that the notice goes to a plain logger).
    var logger: Logger? {
        get { lock.lock(); defer { lock.unlock() }; return _logger }
        set { lock.lock(); _logger = newValue; lock.unlock() }
    }

    init() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [unowned self] in
                let text: Logger.Message = "received \(sig == SIGINT ? "SIGINT" : "SIGTERM"); stopping"
                (self.logger ?? Logger(label: "dagent")).notice(text)
                self.done.signal()
            }
            source.resume()
            sources.append(source)
        }
    }
}
