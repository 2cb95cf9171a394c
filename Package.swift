// swift-tools-version:6.1
import PackageDescription

let package = Package(
  name: "iotrules",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "iotrules", targets: ["iotrules"]),
    .library(name: "IoTSQL", targets: ["IoTSQL"]),
    .library(name: "RulesEngine", targets: ["RulesEngine"]),
    .library(name: "Connectors", targets: ["Connectors"]),
    .library(name: "Actions", targets: ["Actions"]),
    .library(name: "DevTools", targets: ["DevTools"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
  ],
  targets: [
    .target(
      name: "IoTSQL",
      // ICU's regular-expression engine ships inside Foundation on Linux (module _FoundationICU).
      linkerSettings: [.linkedLibrary("_FoundationICU", .when(platforms: [.linux]))]
    ),
    .target(
      name: "RulesEngine",
      dependencies: [
        "IoTSQL",
        .product(name: "Yams", package: "Yams"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .systemLibrary(
      name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
    .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
    .target(
      name: "Connectors",
      dependencies: [
        "RulesEngine", "IoTSQL", "CMosquitto", "CRdKafka",
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .target(
      name: "Actions",
      dependencies: [
        "RulesEngine", "IoTSQL", "Connectors", "CFileOps",
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "GRDBSQLite", package: "GRDB.swift"),
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ]
    ),
    .target(
      name: "Daemon",
      dependencies: [
        "RulesEngine", "Actions", "Connectors", "IoTSQL",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ]
    ),
    .target(
      name: "TestSupport",
      dependencies: [
        "RulesEngine", "IoTSQL", "CRdKafka",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]
    ),
    .systemLibrary(name: "CEditLine", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
    .target(
      name: "DevTools",
      dependencies: [
        "IoTSQL", "RulesEngine", "Connectors", "Actions", .product(name: "Yams", package: "Yams"),
      ]
    ),
    .executableTarget(
      name: "iotrules",
      dependencies: [
        "IoTSQL", "RulesEngine", "Actions", "Connectors", "Daemon", "DevTools", "CEditLine",
        "CReplInterrupt", "CJemallocConfig", "CFileOps",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
      ],
      // jemalloc instead of glibc's malloc: a source thread allocates each message and an action
      // lane frees it; glibc then serialises both threads on one arena lock (see ARCHITECTURE.md).
      // Linked by lld with packed relative relocations (DT_RELR, glibc 2.36): the dynamic loader
      // reads 11 KB of them at start instead of 1.3 MB of RELA entries: 0.7 MB less peak resident
      // memory with 10,000 rules (Benchmarks/ab.py); gold, the default, has no such option.
      linkerSettings: [
        .linkedLibrary("jemalloc", .when(platforms: [.linux])),
        .unsafeFlags(
          ["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(platforms: [.linux])),
      ]
    ),
    // The jemalloc options of the iotrules executable (one arena: see malloc_conf.c).
    .target(name: "CJemallocConfig"),
    // The REPL's Ctrl-C: a signal handler and the line editor's character source, in C.
    .target(name: "CReplInterrupt"),
    // renameat2(RENAME_NOREPLACE), which Swift's Glibc module does not declare: archive rotation.
    .target(name: "CFileOps"),
    // The engine as the iotrules executable runs it: with the same allocator and its options.
    .executableTarget(
      name: "iotrules-bench",
      dependencies: [
        "IoTSQL", "RulesEngine", "Actions", "CJemallocConfig",
        .product(name: "GRDBSQLite", package: "GRDB.swift"),
      ],
      path: "Benchmarks/iotrules-bench",
      linkerSettings: [.linkedLibrary("jemalloc", .when(platforms: [.linux]))]),
    .executableTarget(
      name: "connectors-bench", dependencies: ["Connectors", "RulesEngine", "TestSupport"],
      path: "Benchmarks/connectors-bench"),
    .testTarget(
      name: "IoTSQLTests", dependencies: ["IoTSQL", "DevTools"],
      exclude: ["Conformance", "Decimal", "Golden"]),
    .testTarget(name: "RulesEngineTests", dependencies: ["RulesEngine", "IoTSQL", "TestSupport"]),
    .testTarget(name: "ActionsTests", dependencies: ["Actions", "RulesEngine", "IoTSQL", "TestSupport"]),
    .testTarget(
      name: "DaemonTests",
      dependencies: [
        "Daemon", "Actions", "Connectors", "RulesEngine", "IoTSQL", "TestSupport",
        .product(name: "Prometheus", package: "swift-prometheus"),
      ]
    ),
    .testTarget(
      name: "DevToolsTests",
      dependencies: ["DevTools", "Daemon", "Actions", "RulesEngine", "IoTSQL", "CEditLine", "TestSupport"],
      exclude: ["Fixtures"]),
    .testTarget(
      name: "ConnectorsTests",
      dependencies: ["Connectors", "Actions", "TestSupport", "RulesEngine", "IoTSQL"]
    ),
  ],
  swiftLanguageModes: [.v6]
)
