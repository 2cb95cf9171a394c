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
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
  ],
  targets: [
    .target(name: "IoTSQL"),
    .target(name: "RulesEngine", dependencies: ["IoTSQL"]),
    .executableTarget(
      name: "iotrules",
      dependencies: [
        "IoTSQL",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .executableTarget(name: "iotrules-bench", dependencies: ["IoTSQL"], path: "Benchmarks/iotrules-bench"),
    .testTarget(name: "IoTSQLTests", dependencies: ["IoTSQL"]),
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
        "RulesEngine", "IoTSQL", "Connectors",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]
    ),
    .target(
      name: "TestSupport",
      dependencies: [
        "RulesEngine", "CRdKafka",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]
    ),
    .testTarget(
      name: "ConnectorsTests",
      dependencies: ["Connectors", "Actions", "TestSupport", "RulesEngine", "IoTSQL"]
    ),
  ],
  swiftLanguageModes: [.v6]
)
