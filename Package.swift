// swift-tools-version:6.0
import PackageDescription

/// Exclusivity checks cost ~10% on the forwarding path (measured with perf);
/// the routing core runs on one event loop, so release builds skip them.
let fastRelease: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioLocks = Target.Dependency.product(name: "NIOConcurrencyHelpers", package: "swift-nio")
let nioEmbedded = Target.Dependency.product(name: "NIOEmbedded", package: "swift-nio")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")
let x509 = Target.Dependency.product(name: "X509", package: "swift-certificates")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")

// The layers, bottom up (each module's README says what it owns):
//   DAgentWire                    protobuf types, framing, batching, msgq codecs
//   DAgentRouting                 the pure routing core (no I/O)
//   DAgentLink                    what every link is to the node (LinkIO)
//   DAgentMsgq                    System V message-queue links, the name table, MsgqEventLoop
//   DAgentNode                    the NIO driver: TCP links, config, tree queries, the node API
//   DAgentRaft                    the pure Raft core (no I/O)
//   DAgentRaftStorage             WAL, snapshots, disk storage
//   DAgentState                   the KV + name directory state machine (pure)
//   DAgentRoot                    a root-group replica: Raft on a node, DCF bootstrap, @state
//   CPyHost / DAgentPython        the embedded CPython plugin host (the only libpython users)
//   CDAgent / CDAgentCore         the C API that SWIG wraps for standalone Python
//   DAgentCLI, dagent             the shipped CLI
//   dagent-bench                  load generators and peer comparisons (not shipped in dagent)
// `scripts/check-layers` fails the tests if a pure module imports platform code.
let package = Package(
    name: "dagent",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "dagent", targets: ["dagent"]),
        .executable(name: "dagent-bench", targets: ["dagent-bench"]),
        .library(name: "DAgentNode", targets: ["DAgentNode"]),
        .library(name: "DAgentWire", targets: ["DAgentWire"]),
        .library(name: "DAgentRaft", targets: ["DAgentRaft"]),
        // The C API for standalone Python (SWIG) and C programs. Must not link libpython.
        .library(name: "CDAgent", type: .dynamic, targets: ["CDAgentCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        // Security (issue 12): TLS on tree and Raft links, certificates, HMAC challenge-response.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        // permessage-deflate on the push WebSocket (issue 14): zlib's raw deflate over ByteBuffers.
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
    ],
    targets: [
        // Generated protobuf types, frame codec, batching, msgq codecs. No routing, no sockets.
        .target(
            name: "DAgentWire",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf"), nioCore],
            exclude: ["README.md"],
            swiftSettings: fastRelease
        ),
        // The pure routing core: registration, routes and cache, send queues, RPC table, timers as inputs.
        .target(
            name: "DAgentRouting",
            dependencies: ["DAgentWire", nioCore, crypto],
            exclude: ["README.md"],
            swiftSettings: fastRelease
        ),
        // The outbound side of a link, whatever carries it.
        .target(
            name: "DAgentLink",
            dependencies: ["DAgentWire", nioCore],
            exclude: ["README.md"],
            swiftSettings: fastRelease
        ),
        // System V IPC helpers (msgbuf layout, seqlock memory ordering). C, no state.
        .target(name: "CDAgentIPC"),
        // Leaves and agents on System V message queues: links, the shared name table, MsgqEventLoop.
        .target(
            name: "DAgentMsgq",
            dependencies: ["DAgentRouting", "DAgentLink", "DAgentWire", "CDAgentIPC", nioCore, nioLocks, logging],
            exclude: ["README.md"],
            swiftSettings: fastRelease
        ),
        // TLS material for links (swift-nio-ssl, swift-certificates, swift-crypto): config files,
        // contexts, the handshake gate, the cluster CA of `dagent certs`. No routing.
        .target(
            name: "DAgentTLS",
            dependencies: [nioCore, nioSSL, x509, crypto, .product(name: "NIOTLS", package: "swift-nio")],
            exclude: ["README.md"]
        ),
        // The NIO driver of one node: TCP links, config, tree queries, the public node API.
        .target(
            name: "DAgentNode",
            dependencies: [
                "DAgentRouting", "DAgentLink", "DAgentMsgq", "DAgentWire", "DAgentHTTP", "DAgentTLS",
                nioCore, nioLocks, nioPosix, logging,
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["README.md"],
            swiftSettings: fastRelease
        ),
        // The pure core of the push gateway: topics, client frames, send queues with
        // conflation, per-topic numbering and history, fan-out. No I/O.
        .target(
            name: "DAgentPush",
            dependencies: ["DAgentWire", nioCore],
            exclude: ["README.md"],
            swiftSettings: fastRelease
        ),
        // The push gateway's NIO driver: WebSocket clients (NIOWebSocket) over the node's
        // HTTP listener, the plugin's decisions through node messages, pub/sub through a broker.
        .target(
            name: "DAgentPushGateway",
            dependencies: [
                "DAgentPush", "DAgentNode", "DAgentRouting", "DAgentWire", nioCore, logging,
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            exclude: ["README.md"]
        ),
        // The node's HTTP/1.1 listener (NIOHTTP1): routes, static directories, named limits,
        // and upgraders other modules add (the push service's /ws). Knows nothing of the tree.
        .target(
            name: "DAgentHTTP",
            dependencies: [nioCore, nioPosix, nioLocks, nioHTTP1, logging],
            exclude: ["README.md"]
        ),
        // One metrics registry per node (counters, gauges, histograms; swift-metrics factory),
        // its Prometheus/OpenMetrics text, /metrics, the core's figures, the report_to reporter.
        .target(
            name: "DAgentMetrics",
            dependencies: [
                "DAgentNode", "DAgentHTTP", "DAgentWire", nioCore, nioLocks, logging,
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            exclude: ["README.md"]
        ),
        // Deterministic Raft core (etcd-io/raft style): no I/O, no dependencies.
        .target(
            name: "DAgentRaft",
            exclude: ["README.md"],
            swiftSettings: fastRelease
        ),
        // Raft's durable storage: the fsync'd WAL, snapshots, DiskStorage.
        .target(
            name: "DAgentRaftStorage",
            dependencies: ["DAgentRaft"],
            exclude: ["README.md"],
            swiftSettings: fastRelease
        ),
        // The replicated state machine: KV with revisions, leases, locks, watches; the name directory.
        .target(
            name: "DAgentState",
            exclude: ["README.md"],
            swiftSettings: fastRelease
        ),
        // A root-group replica: a top node running Raft, serving `@state`; the DCF bootstrap.
        .target(
            name: "DAgentRoot",
            dependencies: [
                "DAgentNode", "DAgentRouting", "DAgentRaft", "DAgentRaftStorage", "DAgentState", "DAgentWire",
                nioCore, logging, .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            exclude: ["README.md"]
        ),
        // `pkg-config python3-embed` (cflags, -lpython3.X) for CPyHost. Its header is empty:
        // Python.h must never be visible to Swift (Glibc's fd_set would be defined twice).
        .systemLibrary(
            name: "CPythonEmbed",
            pkgConfig: "python3-embed",
            providers: [.apt(["libpython3-dev"])]
        ),
        // The only place that includes Python.h: starts CPython, provides the built-in
        // `_dagent_host` module, hands batches of messages to Python. Public header is plain C.
        .target(
            name: "CPyHost",
            dependencies: ["CPythonEmbed"],
            exclude: ["README.md"]
        ),
        // The embedded plugin host: the plugin thread, batches, watchdog, reload, stats.
        // Links libpython (through CPyHost); only the executables depend on it.
        .target(
            name: "DAgentPython",
            dependencies: [
                "CPyHost", "DAgentNode", "DAgentWire", "DAgentHTTP",
                nioCore, nioLocks, nioHTTP1, logging,
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["README.md"]
        ),
        // The C API's header (include/cdagent.h) and its C half (thread-local last error).
        .target(
            name: "CDAgent",
            path: "Sources/CDAgent"
        ),
        // The C API's Swift half: @_cdecl functions over DAgentNode. No Python here.
        .target(
            name: "CDAgentCore",
            dependencies: ["CDAgent", "DAgentNode", "DAgentTLS", "DAgentWire", nioCore, nioPosix, nioLocks, logging]
        ),
        // What the `dagent` and `dagent-bench` executables share: joining the tree as a one-shot node.
        .target(
            name: "DAgentCLI",
            dependencies: ["DAgentNode", "DAgentTLS", "DAgentWire", argumentParser, logging, nioCore, nioPosix]
        ),
        // Process helpers in C for the deploy supervisor: posix_spawn with file/signal actions, prctl.
        .target(name: "CDAgentProc"),
        // Deploying trees: the topology file (parser, validation), the pure supervisor state
        // machine (restart policies, backoff, crash loops), and its thin process/log I/O layer.
        // No routing, no NIO: the CLI wires it to a node.
        .target(
            name: "DAgentDeploy",
            dependencies: ["CDAgentProc", .product(name: "Yams", package: "Yams")],
            exclude: ["README.md"]
        ),
        // The `dagent` command-line tool.
        .executableTarget(
            name: "dagent",
            dependencies: [
                "DAgentCLI", "DAgentNode", "DAgentRoot", "DAgentRaft", "DAgentRaftStorage", "DAgentState", "DAgentTLS",
                "DAgentWire", "DAgentPython", "DAgentMetrics", "DAgentPushGateway", "DAgentDeploy", "CDAgentProc",
                argumentParser, logging, nioCore, nioPosix,
            ]
        ),
        // Load generators and peer drivers for `scripts/bench` (not part of the shipped CLI).
        .executableTarget(
            name: "dagent-bench",
            dependencies: [
                "DAgentCLI", "DAgentNode", "DAgentRoot", "DAgentWire", "DAgentPython",
                argumentParser, logging, nioCore, nioPosix, nioLocks, nioHTTP1,
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        // What several test targets share: temporary directories, disk helpers, free ports, waiting with a deadline.
        .target(name: "DAgentTestSupport", path: "Tests/DAgentTestSupport", exclude: ["README.md"]),
        // The one harness that starts real `dagent` processes for integration tests (`Cluster`, `RawPeer`).
        .target(
            name: "DAgentClusterSupport",
            dependencies: ["DAgentTestSupport", "DAgentWire", "DAgentNode", "DAgentRouting", nioCore, nioPosix],
            path: "Tests/DAgentClusterSupport",
            exclude: ["README.md"]
        ),
        .testTarget(name: "DAgentWireTests", dependencies: ["DAgentWire", nioCore, nioEmbedded]),
        .testTarget(name: "DAgentRoutingTests", dependencies: ["DAgentRouting", "DAgentWire", nioCore]),
        .testTarget(name: "DAgentMsgqTests", dependencies: ["DAgentMsgq", "DAgentTestSupport", "DAgentRouting", "DAgentWire", nioCore, nioLocks]),
        .testTarget(name: "DAgentNodeTests", dependencies: ["DAgentNode", "DAgentRouting", "DAgentTestSupport", "DAgentWire", "DAgentTLS"]),
        .testTarget(name: "DAgentMetricsTests", dependencies: ["DAgentMetrics", "DAgentNode", "DAgentWire", .product(name: "CoreMetrics", package: "swift-metrics")]),
        // The C API called as a C program calls it (two nodes in the test process, loopback TCP).
        .testTarget(name: "CDAgentTests", dependencies: ["CDAgent", "CDAgentCore", "DAgentTestSupport"]),
        .testTarget(name: "DAgentHTTPTests", dependencies: ["DAgentHTTP", nioCore, nioPosix, nioHTTP1, nioEmbedded, logging]),
        .testTarget(
            name: "DAgentRaftTests",
            dependencies: ["DAgentRaft", "DAgentRaftStorage", "DAgentTestSupport"],
            // Scenario scripts are read at runtime via #filePath, not bundled.
            exclude: ["testdata"]
        ),
        .testTarget(name: "DAgentStateTests", dependencies: ["DAgentState"]),
        .testTarget(name: "DAgentPushTests", dependencies: [
            "DAgentPush", "DAgentPushGateway", nioCore, nioEmbedded, .product(name: "NIOWebSocket", package: "swift-nio"),
        ]),
        .testTarget(name: "DAgentRootTests", dependencies: ["DAgentRoot", "DAgentRaft", "DAgentTestSupport"]),
        // The topology parser and the supervisor state machine (pure), spawner and logs (real processes).
        .testTarget(name: "DAgentDeployTests", dependencies: ["DAgentDeploy", "DAgentTestSupport"]),
        // Starts real `dagent` processes on loopback.
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["DAgentClusterSupport", "DAgentWire", "DAgentNode", "DAgentMsgq", "DAgentRaft", nioCore, nioPosix]
        ),
    ],
    swiftLanguageModes: [.v5]
)

// Fuzzing (docs/testing.md, scripts/fuzz): `DAGENT_FUZZ=1 swift build --scratch-path .build-fuzz
// --product dagent-fuzz` adds the libFuzzer executable and instruments only this package's
// decoding modules (coverage + AddressSanitizer); the dependencies build as usual, which keeps
// the fuzz build cheap. Without DAGENT_FUZZ the package is exactly the one above.
if Context.environment["DAGENT_FUZZ"] != nil {
    let fuzzFlags: [String] = ["-sanitize=fuzzer,address"]
    let instrumented: Set<String> = [
        "DAgentWire", "DAgentRouting", "DAgentMsgq", "DAgentNode", "DAgentRaft", "DAgentRaftStorage",
        "DAgentState", "DAgentRoot", "DAgentPush", "DAgentPushGateway", "DAgentDeploy",
    ]
    for target in package.targets where instrumented.contains(target.name) {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(fuzzFlags)]
    }
    package.targets.append(.executableTarget(
        name: "dagent-fuzz",
        dependencies: [
            "DAgentWire", "DAgentRouting", "DAgentMsgq", "DAgentNode", "DAgentRaft", "DAgentRaftStorage",
            "DAgentState", "DAgentRoot", "DAgentPush", "DAgentPushGateway", "DAgentDeploy", nioCore,
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "fuzz/dagent-fuzz",
        swiftSettings: [.unsafeFlags(fuzzFlags + ["-parse-as-library"])],
        linkerSettings: [.unsafeFlags(fuzzFlags)]
    ))
}
