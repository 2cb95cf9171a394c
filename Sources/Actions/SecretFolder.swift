import Foundation
import IoTSQL

/// The daemon's secret store for `get_secret(id)`: a file named `id` in the secrets folder (its text,
/// without a final newline), else the environment variable `IOTRULES_SECRET_<ID>` (the id upper-cased,
/// every character other than a letter or digit replaced by `_`). Never a value in a rule file.
public struct SecretFolder: SecretStore {
  /// The folder of secret files, or nil for the environment only.
  public let folder: String?
  /// The environment to read, captured when the store is made.
  public let environment: [String: String]

  /// Creates a store over `folder` (optional) and the process environment.
  public init(folder: String?, environment: [String: String] = ProcessInfo.processInfo.environment) {
    self.folder = folder
    self.environment = environment
  }

  /// The environment variable that holds secret `id`.
  public static func variableName(for id: String) -> String {
    "IOTRULES_SECRET_"
      + String(
        id.uppercased().unicodeScalars.map {
          $0.properties.isAlphabetic || ("0"..."9").contains($0) ? Character($0) : "_"
        })
  }

  /// The secret named `id`; nil when absent or when the id could leave the folder.
  public func secret(named id: String) -> String? {
    let safe =
      !id.isEmpty && id != "." && id != ".."
      && id.unicodeScalars.allSatisfy {
        $0.isASCII
          && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0))
      }
    if safe, let folder, let data = FileManager.default.contents(atPath: folder + "/" + id) {
      var text = String(decoding: data, as: UTF8.self)
      while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
      return text
    }
    return environment[Self.variableName(for: id)]
  }
}
