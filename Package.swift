// swift-tools-version:6.1
import PackageDescription

let package = Package(
  name: "iotrules",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "iotrules", targets: ["iotrules"]),
    .library(name: "IoTSQL", targets: ["IoTSQL"]),
    .library(name: "RulesEngine", targets: ["RulesEngine"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
  ],
  targets: [
    .target(name: "IoTSQL"),
    .target(
      name: "RulesEngine",
      dependencies: [
        "IoTSQL",
        .product(name: "Yams", package: "Yams"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
      ]
    ),
    .target(name: "Connectors", dependencies: ["RulesEngine", "IoTSQL"]),
    .target(
      name: "Actions",
      dependencies: [
        "RulesEngine", "IoTSQL",
        .product(name: "GRDB", package: "GRDB.swift"),
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
    .target(name: "TestSupport", dependencies: ["RulesEngine", "IoTSQL"]),
    .executableTarget(
      name: "iotrules",
      dependencies: [
        "IoTSQL", "RulesEngine", "Actions", "Connectors", "Daemon",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .executableTarget(name: "iotrules-bench", dependencies: ["IoTSQL"], path: "Benchmarks/iotrules-bench"),
    .testTarget(name: "IoTSQLTests", dependencies: ["IoTSQL"]),
    .testTarget(name: "RulesEngineTests", dependencies: ["RulesEngine", "IoTSQL", "TestSupport"]),
    .testTarget(name: "ActionsTests", dependencies: ["Actions", "RulesEngine", "IoTSQL", "TestSupport"]),
    .testTarget(
      name: "DaemonTests",
      dependencies: ["Daemon", "Actions", "Connectors", "RulesEngine", "IoTSQL", "TestSupport"]
    ),
  ],
  swiftLanguageModes: [.v6]
)
