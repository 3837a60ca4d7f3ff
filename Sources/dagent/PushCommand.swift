import ArgumentParser
import DAgentPython
import Foundation

/// `dagent push ...`: the push service's tools.
struct PushCommandGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Tools of the push service (browsers on WebSocket, see docs/push.md).",
        subcommands: [PushTokenCommand.self])
}

/// `dagent push token`: prints a JWT (HS256) for a browser client. It runs
/// `python -m dagent push token` (PyJWT signs it), so the CLI and the plugin
/// share one implementation.
struct PushTokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a token (JWT HS256) that lets a browser connect to /ws.",
        discussion: """
        The claims are sub (the user), exp (now + --ttl), topics (patterns the client may subscribe to)
        and pub (topics it may publish to). The secret is the push plugin's secret_file.
        Example: dagent push token --secret-file push.secret --sub alice --topics 'news.>' --pub 'chat.*'
        """)

    @Option(help: "File holding the HS256 secret (the push plugin's secret_file).") var secretFile: String
    @Option(help: "The user (the token's sub claim).") var sub: String
    @Option(help: "Patterns the client may subscribe to (repeatable, or comma-separated).") var topics: [String] = []
    @Option(help: "Topics the client may publish to (repeatable, or comma-separated).") var pub: [String] = []
    @Option(help: "Seconds the token is valid.") var ttl: Int = 3600
    @Flag(help: "Print the claims and the token as JSON.") var json = false

    func run() throws {
        let dir: String
        do { dir = try PythonLocator.find(explicit: nil) } catch { throw ValidationError("\(error)") }
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        var args = ["-m", "dagent", "push", "token", "--secret-file", secretFile, "--sub", sub, "--ttl", String(ttl)]
        for t in topics { args += ["--topics", t] }
        for p in pub { args += ["--pub", p] }
        if json { args.append("--json") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python == "python3" ? "/usr/bin/env" : python)
        p.arguments = python == "python3" ? ["python3"] + args : args
        var env = ProcessInfo.processInfo.environment
        env["PYTHONPATH"] = dir + (env["PYTHONPATH"].map { ":" + $0 } ?? "")
        p.environment = env
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw ExitCode(p.terminationStatus) }
    }
}
