import RulesEngine

/// An error that carries further problems of the same kind: the first problem found, then the
/// others, in the order they were found.
protocol GatheredError: Error {
  /// The problems after this one.
  var further: [Self] { get set }
  /// This problem and the further ones.
  var all: [Self] { get }
}

extension GatheredError {
  /// This problem and the further ones.
  var all: [Self] {
    var first = self
    first.further = []
    return [first] + further
  }
}

extension ActionSettingsError: GatheredError {}
extension ActionConfigurationError: GatheredError {}

/// Collects the problems of one action's configuration, so that `iotrules check` reports them all
/// at once instead of one a run: the check goes on after a problem, and the action is refused at
/// the end if any was found.
struct Problems<Failure: GatheredError> {
  private(set) var list: [Failure] = []

  /// Notes `error` (and the further problems it carries).
  mutating func add(_ error: Failure) { list += error.all }

  /// What `body` returns, or nil once its error is noted.
  mutating func attempt<T>(_ body: () throws(Failure) -> T) -> T? {
    do {
      return try body()
    } catch {
      add(error)
      return nil
    }
  }

  /// Throws the first problem, carrying the others, if there is any.
  func throwIfAny() throws(Failure) {
    guard var first = list.first else { return }
    first.further = Array(list.dropFirst())
    throw first
  }
}

/// The problems of a connector action's settings (`republish`, `kafka`, `http`), named by field.
typealias SettingsProblems = Problems<ActionSettingsError>

/// The problems of an action configured straight from its rule-file node (`sqlite`, `file`), with
/// their file positions.
typealias ConfigurationProblems = Problems<ActionConfigurationError>

extension Problems where Failure == ActionSettingsError {
  /// Notes a problem of `field`.
  mutating func add(field: String, _ message: String) { add(ActionSettingsError(field: field, message)) }
}

extension Problems where Failure == ActionConfigurationError {
  /// Notes a problem at `position`.
  mutating func add(_ message: String, at position: FilePosition?) {
    add(ActionConfigurationError(message, at: position))
  }
}
