/// get, get_or_default, isNull, isUndefined and transform.
///
/// Policy: these take any value; each states what Undefined and Null give. `get` converts only its
/// index (the implicit Int conversion); an Object key must already be a String.
enum CollectionFunctions {
  /// The largest array `transform` returns, in bytes of compact JSON (128 KiB, as AWS).
  static let transformLimit = 128 * 1024

  static let specs: [FunctionSpec] = [
    FunctionSpec(
      name: "get", family: "collection", arity: 2...2,
      signature: "get(array|string|object, index|key) -> Any",
      help: "Element index (0-based) of an array or string, or member key of an object; else Undefined."
    ) { call in
      switch call[0] {
      case .array(let elements):
        guard let index = Coercions.toImplicitInt(call[1]), elements.indices.contains(index) else {
          return .undefined
        }
        return elements[index]
      case .string(let text):
        guard let index = Coercions.toImplicitInt(call[1]), index >= 0 else { return .undefined }
        let units = text.utf16
        guard index < units.count else { return .undefined }
        let position = units.index(units.startIndex, offsetBy: index)
        return .string(String(utf16Units: CollectionOfOne(units[position])))
      case .object(let object):
        guard case .string(let key) = call[1] else { return .undefined }
        return object[key] ?? .undefined
      default:
        return .undefined
      }
    },
    FunctionSpec(
      name: "get_or_default", family: "collection", arity: 1...2,
      signature: "get_or_default(value[, default]) -> Any",
      help: "value, or default (Undefined when not given) when value is Undefined or Null."
    ) { call in
      switch call[0] {
      case .undefined, .null: return call.count == 2 ? call[1] : .undefined
      default: return call[0]
      }
    },
    FunctionSpec(
      name: "isNull", family: "collection", arity: 1...1, signature: "isNull(value) -> Boolean",
      help: "True only for Null (Undefined is not Null)."
    ) { call in
      if case .null = call[0] { return .bool(true) }
      return .bool(false)
    },
    FunctionSpec(
      name: "isUndefined", family: "collection", arity: 1...1, minimumVersion: .v2016_03_23,
      signature: "isUndefined(value) -> Boolean", help: "True only for Undefined."
    ) { call in .bool(call[0].isUndefined) },
    FunctionSpec(
      name: "transform", family: "collection", arity: 3...3, minimumVersion: .v2016_03_23,
      signature: "transform('enrichArray', object, array) -> Array",
      help: "enrichArray: each object of array with object's members added; other modes Undefined.",
      prepare: { constants, _ throws(FunctionPrepareError) in
        // A parameter that switches a function's mode takes no variable (AWS's SET page names
        // transform's), nor a field.
        if case .some(.none) = constants.first {
          throw FunctionPrepareError(
            argument: 0,
            message:
              "the mode of transform() must be a literal string ('enrichArray')")
        }
        if case .string(let mode)?? = constants.first, mode != "enrichArray" {
          throw FunctionPrepareError(
            argument: 0, message: "unknown transform mode '\(mode)'; the only mode is 'enrichArray'")
        }
        return nil
      },
      implementation: transform
    ),
  ]

  /// `transform('enrichArray', object, array)`: every element that is an object gets the members
  /// of `object` (an existing key takes `object`'s value); other elements are kept as they are.
  /// Undefined when the mode is not enrichArray, the arguments are not an Object and an Array, or
  /// the result exceeds 128 KiB.
  @Sendable static func transform(_ call: borrowing FunctionCall) -> Value {
    guard case .string("enrichArray") = call[0], case .object(let attributes) = call[1],
      case .array(let elements) = call[2]
    else { return .undefined }
    // Each object element comes out holding every member of `object` as `object` has it, so its
    // JSON is at least as long: a result bound to pass the limit is not built (4,000 members into
    // 500 elements took a minute, all thrown away).
    var attributesJSON: [UInt8] = []
    Coercions.writeJSON(.object(attributes), into: &attributesJSON)
    var objects = 0
    for element in elements { if case .object = element { objects += 1 } }
    if objects > 0, attributesJSON.count > transformLimit / objects { return .undefined }
    var result: [Value] = []
    result.reserveCapacity(elements.count)
    for element in elements {
      guard case .object(var object) = element else {
        result.append(element)
        continue
      }
      object.merge(attributes)
      result.append(.object(object))
    }
    let value = Value.array(result)
    var buffer: [UInt8] = []
    Coercions.writeJSON(value, into: &buffer)
    return buffer.count > transformLimit ? .undefined : value
  }
}
