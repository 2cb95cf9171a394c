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
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
  ],
  targets: [
    .target(
      name: "IoTSQL",
      // ICU's regular-expression engine ships inside Foundation on Linux (module _FoundationICU).
      linkerSettings: [.linkedLibrary("_FoundationICU", .when(platforms: [.linux]))]
    ),
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
  ],
  swiftLanguageModes: [.v6]
)
