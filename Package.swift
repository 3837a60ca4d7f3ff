// swift-tools-version:6.0
import PackageDescription

/// Exclusivity checks cost ~10% on the forwarding path (measured with perf);
/// the routing core runs on one event loop, so release builds skip them.
let fastRelease: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "dagent",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dagent", targets: ["dagent"]),
        .library(name: "DCNode", targets: ["DCNode"]),
        .library(name: "DAgentWire", targets: ["DAgentWire"]),
        .library(name: "DAgentRaft", targets: ["DAgentRaft"]),
        // The C API for standalone Python (SWIG) and C programs. Must not link libpython.
        .library(name: "CDAgent", type: .dynamic, targets: ["CDAgentCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // Generated protobuf types, frame codec. No routing, no sockets.
        .target(
            name: "DAgentWire",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["README.md"],
            swiftSettings: fastRelease
        ),
        // System V IPC helpers (msgbuf layout, seqlock memory ordering). C, no state.
        .target(name: "CDAgentIPC"),
        // The node: routing core (pure), links (TCP, System V message queues), timers, RPC, queues.
        .target(
            name: "DCNode",
            dependencies: [
                "DAgentWire",
                "CDAgentIPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["README.md"],
            swiftSettings: fastRelease
        ),
        // Deterministic Raft core (etcd-io/raft style): no I/O, no dependencies.
        .target(
            name: "DAgentRaft",
            exclude: ["README.md", "State/README.md"],
            swiftSettings: fastRelease
        ),
        // A root-group replica: a top node running Raft and serving `@state`.
        .target(
            name: "DAgentRoot",
            dependencies: [
                "DCNode", "DAgentRaft", "DAgentWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
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
        // Links libpython (through CPyHost); only the `dagent` executable depends on it.
        .target(
            name: "DAgentPython",
            dependencies: [
                "CPyHost", "DCNode", "DAgentWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["README.md"]
        ),
        // The C API's header (include/cdagent.h) and its C half (thread-local last error).
        .target(
            name: "CDAgent",
            path: "Sources/CDAgent"
        ),
        // The C API's Swift half: @_cdecl functions over DCNode. No Python here.
        .target(
            name: "CDAgentCore",
            dependencies: [
                "CDAgent", "DCNode", "DAgentWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Process helpers in C for the deploy supervisor: posix_spawn with file/signal actions, prctl.
        .target(name: "CDAgentProc"),
        // Deploying trees: the topology file (parser, validation), the pure supervisor state
        // machine (restart policies, backoff, crash loops), and its thin process/log I/O layer.
        // No routing, no NIO: the CLI wires it to a node.
        .target(
            name: "DAgentDeploy",
            dependencies: [
                "CDAgentProc",
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["README.md"]
        ),
        // The `dagent` command-line tool.
        .executableTarget(
            name: "dagent",
            dependencies: [
                "DCNode", "DAgentRoot", "DAgentRaft",
                "DAgentWire",
                "DAgentPython", "DAgentDeploy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "DAgentWireTests",
            dependencies: [
                "DAgentWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "DCNodeTests",
            dependencies: [
                "DCNode", "DAgentWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "DAgentRaftTests",
            dependencies: ["DAgentRaft"],
            // Scenario scripts are read at runtime via #filePath, not bundled.
            exclude: ["testdata"]
        ),
        // The replicated KV + name directory state machine (pure).
        .testTarget(
            name: "DAgentStateTests",
            dependencies: ["DAgentRaft"]
        ),
        // The topology parser and the supervisor state machine (pure), spawner and logs (real processes).
        .testTarget(
            name: "DAgentDeployTests",
            dependencies: ["DAgentDeploy"]
        ),
        // Starts real `dagent` processes on loopback.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "DAgentWire", "DCNode",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v5]
)
