import IoTSQL
import RulesEngine

/// The shape a connector action's settings must have (`republish`, `kafka`, `http`), judged over the
/// rule file's own node before the settings are decoded, so that one run of `check` names every
/// misspelt key and every value of the wrong type, each at its place, in the words of a rule file
/// rather than of a decoder.
indirect enum SettingShape: Sendable {
  /// A string (a template, where the action says so).
  case string
  /// A whole number (its range is the action's to judge).
  case wholeNumber
  /// `true` or `false`.
  case boolean
  /// A whole number or a string (Kafka's `partition`: a number or a template).
  case stringOrWholeNumber
  /// An object of strings (Kafka's `clientProperties`).
  case stringMap
  /// Anything: the action reads it to judge it itself (AWS's `roleArn`, `auth`).
  case anything
  /// An array of elements of one shape.
  case array(SettingShape)
  /// An object of these keys, `required` among them; any other key is refused.
  case object([String: SettingShape], required: Set<String> = [])

  /// A `{"key", "value"}` pair of strings (headers, user properties). Made at each use, not held in
  /// a global: an indirect enum's global keeps its case in the pointer's spare bits, where
  /// LeakSanitizer (`make asan`) does not see the pointer and reports the shape as leaked.
  static var keyValue: SettingShape {
    .object(["key": .string, "value": .string], required: ["key", "value"])
  }

  /// What a value of this shape is, for a message: "a whole number".
  var expectation: String {
    switch self {
    case .string: "a string"
    case .wholeNumber: "a whole number"
    case .boolean: "true or false"
    case .stringOrWholeNumber: "a whole number or a string"
    case .stringMap: "an object of strings"
    case .anything: "any value"
    case .array(let element):
      if case .object(let keys, _) = element, Set(keys.keys) == ["key", "value"] {
        "an array of {\"key\", \"value\"} objects"
      } else {
        "an array"
      }
    case .object: "an object"
    }
  }

  /// Notes every place where `node` departs from this shape: a value of another kind, a key the
  /// object does not have (besides `ignoring`, which the caller reads), a required key missing.
  /// `path` names the node in messages (`http.batch`).
  func check(
    _ node: RuleNode, path: String, ignoring: Set<String> = [], into problems: inout ConfigurationProblems
  ) {
    func wrong() {
      let hint: String
      switch self {
      case .string, .stringOrWholeNumber: hint = node.readingHint(expecting: .string)
      case .boolean: hint = node.readingHint(expecting: .boolean)
      case .wholeNumber: hint = node.readingHint(expecting: .number)
      default: hint = ""
      }
      problems.add("\(path): must be \(expectation), not \(node.kindName)\(hint)", at: node.position)
    }
    switch self {
    case .anything: return
    case .string: if node.string == nil { wrong() }
    case .boolean: if node.bool == nil { wrong() }
    case .wholeNumber, .stringOrWholeNumber:
      if case .stringOrWholeNumber = self, node.string != nil { return }
      guard case .number(let spelling) = node.kind else { return wrong() }
      if node.int == nil {
        let whole = Double(spelling).map { $0 == $0.rounded() } ?? false
        problems.add(
          whole
            ? "\(path): \(spelling) is out of range"
            : "\(path): must be a whole number, not \(spelling)",
          at: node.position)
      }
    case .stringMap:
      guard let members = node.members else { return wrong() }
      for member in members where member.value.string == nil {
        problems.add(
          "\(path).\(member.key): must be a string, not \(member.value.kindName)"
            + member.value.readingHint(expecting: .string), at: member.value.position)
      }
    case .array(let element):
      guard case .array(let items) = node.kind else { return wrong() }
      for (index, item) in items.enumerated() {
        element.check(item, path: "\(path)[\(index)]", into: &problems)
      }
    case .object(let keys, let required):
      guard let members = node.members else { return wrong() }
      for member in members where !ignoring.contains(member.key) {
        guard let shape = keys[member.key] else {
          // The action's own keys are "in the http action"; a nested object's, "in http.batch".
          let place = path.contains(".") || path.contains("[") ? path : "the \(path) action"
          // The keys the caller reads (`retry`, `errorAction`) are as much the object's.
          let expected = Set(keys.keys).union(ignoring)
          problems.add(
            "unknown key '\(RuleFile.escapedName(member.key))' in \(place)\(FunctionRegistry.didYouMean(member.key, among: Array(expected)))"
              + "; expected \(expected.sorted().joined(separator: ", "))",
            at: member.keyPosition)
          continue
        }
        shape.check(member.value, path: "\(path).\(member.key)", into: &problems)
      }
      for key in required.sorted() where node[key] == nil {
        problems.add("\(path).\(key): missing", at: node.position)
      }
    }
  }

  /// `node` with what departs from this shape taken out, so the rest can still be decoded and
  /// judged: a member of the wrong kind or an unknown key dropped, an object or array kept with its
  /// good parts; a required key missing (or dropped) stands in as a `placeholder` value, whose path
  /// (`http.url`) is added to `placeholders` so its own messages can be left out (the shape's
  /// message said what is wrong there).
  func pruned(_ node: RuleNode, path: String, ignoring: Set<String> = [], placeholders: inout Set<String>)
    -> RuleNode?
  {
    var own = ConfigurationProblems()
    check(node, path: path, ignoring: ignoring, into: &own)
    if own.list.isEmpty { return node }
    var result = node
    switch self {
    case .array(let element):
      guard case .array(let items) = node.kind else { return nil }
      // An element of the wrong kind gets a stand-in, not dropped: the later ones keep their
      // indexes, which messages and the stand-ins' paths name.
      var kept: [RuleNode] = []
      for (index, item) in items.enumerated() {
        let itemPath = "\(path)[\(index)]"
        if let good = element.pruned(item, path: itemPath, placeholders: &placeholders) {
          kept.append(good)
        } else if let stand = element.placeholder(at: item.position) {
          placeholders.insert(itemPath)
          kept.append(stand)
        } else {
          return nil
        }
      }
      result.kind = .array(kept)
    case .stringMap:
      // The members that are strings.
      guard let members = node.members else { return nil }
      result.kind = .object(members.filter { $0.value.string != nil })
    case .object(let keys, let required):
      guard let members = node.members else { return nil }
      var kept: [RuleNode.Member] = []
      for member in members {
        if ignoring.contains(member.key) {
          kept.append(member)
          continue
        }
        guard let shape = keys[member.key],
          let value = shape.pruned(member.value, path: "\(path).\(member.key)", placeholders: &placeholders)
        else { continue }
        kept.append(RuleNode.Member(key: member.key, keyPosition: member.keyPosition, value: value))
      }
      for key in required.sorted() where !kept.contains(where: { $0.key == key }) {
        guard let stand = keys[key]?.placeholder(at: node.position) else { return nil }
        placeholders.insert("\(path).\(key)")
        kept.append(RuleNode.Member(key: key, keyPosition: node.position, value: stand))
      }
      result.kind = .object(kept)
    default:
      // A scalar of the wrong kind: dropped.
      return nil
    }
    return result
  }

  /// A value of this shape that stands in for a missing one while the rest is judged.
  private func placeholder(at position: FilePosition) -> RuleNode? {
    let kind: RuleNode.Kind
    switch self {
    case .string, .stringOrWholeNumber: kind = .string("x")
    case .wholeNumber: kind = .number("1")
    case .boolean: kind = .bool(false)
    case .stringMap, .object: kind = .object([])
    case .array: kind = .array([])
    case .anything: kind = .null
    }
    var node = RuleNode(kind: kind, position: position, stringPositions: [])
    if case .object(_, let required) = self, !required.isEmpty {
      var ignored: Set<String> = []
      node = pruned(node, path: "", placeholders: &ignored) ?? node
    }
    return node
  }

  /// A decoder's type in a rule file's words, for a mismatch the shape did not foresee.
  static func words(for type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Int.Type: "a whole number"
    case is Bool.Type: "true or false"
    case is Double.Type: "a number"
    default:
      String(describing: type).hasPrefix("Array") ? "an array" : "an object"
    }
  }
}
