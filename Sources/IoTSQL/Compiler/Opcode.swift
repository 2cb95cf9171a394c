/// The instruction set of the IoT-SQL virtual machine: a stack machine.
///
/// Each case documents its operands, a `Synopsis:` in stack notation (`[.., x] -> [.., y]`), and its
/// edge cases. `synopsis` returns the same line for `explain`. No instruction throws: type problems
/// give Undefined, as AWS does.
public enum Opcode: UInt8, Sendable, CaseIterable {
  /// Pushes constant A.
  /// Synopsis: `[..] -> [.., constants[A]]`
  case constant
  /// Pushes payload path A (a member chain from the payload root), read by the selective JSON scan.
  /// Synopsis: `[..] -> [.., payload.path[A]]`. Undefined when missing or when the payload is binary.
  /// With B = 1 (the source of a projected nested query, see `iterateBegin`), an array or object the
  /// reader left in its bytes stays so, and Undefined is pushed in its place.
  case loadPath
  /// Pushes the whole payload document (`*`): the parsed JSON, or Binary for a non-JSON payload.
  /// Synopsis: `[..] -> [.., *]`
  case loadPayload
  /// Pushes the raw payload bytes as Binary, whatever they hold (`encode(*, ...)`).
  /// Synopsis: `[..] -> [.., bytes(*)]`
  case loadRawPayload
  /// Pushes SET variable A.
  /// Synopsis: `[..] -> [.., @vars[A]]`
  case loadVariable
  /// Pops into SET variable A.
  /// Synopsis: `[.., x] -> [..]; @vars[A] = x`
  case storeVariable
  /// Pushes the current element of the nested query A levels out from the innermost (0: the
  /// innermost, `*` inside it; more for an enclosing query's `AS` name).
  /// Synopsis: `[..] -> [.., element[A]]`
  case loadElement
  /// Pushes member named by constant A of the current nested-query element.
  /// Synopsis: `[..] -> [.., element.K[A]]`. Undefined when the element is not an object. B > 0 in a
  /// projected query (see `iterateBegin`): the member's place among those taken, plus one.
  case loadElementField
  /// Replaces the top with its member named by constant A.
  /// Synopsis: `[.., x] -> [.., x.K[A]]`. Undefined when x is not an object or lacks the key.
  case member
  /// Arithmetic negation. Synopsis: `[.., x] -> [.., -x]`. Numeric strings convert; else Undefined.
  case negate
  /// Logical NOT. Synopsis: `[.., x] -> [.., NOT x]`. Non-Booleans give Undefined.
  case not
  /// `EXISTS`: whether a nested query's result holds an element. Synopsis: `[.., r] -> [.., EXISTS r]`:
  /// true for a non-empty array or an object source's result, false otherwise (never Undefined).
  case exists
  /// Logical OR, both sides evaluated. Synopsis: `[.., x, y] -> [.., x OR y]`
  case or
  /// Logical AND, both sides evaluated. Synopsis: `[.., x, y] -> [.., x AND y]`
  case and
  /// Equality without coercion (`'1' = 1` is false). Synopsis: `[.., x, y] -> [.., x = y]`
  case equal
  /// Synopsis: `[.., x, y] -> [.., x <> y]`
  case notEqual
  /// Numeric ordering; strings convert when numeric. Synopsis: `[.., x, y] -> [.., x < y]`
  case less
  /// Synopsis: `[.., x, y] -> [.., x <= y]`
  case lessOrEqual
  /// Synopsis: `[.., x, y] -> [.., x > y]`
  case greater
  /// Synopsis: `[.., x, y] -> [.., x >= y]`
  case greaterOrEqual
  /// Membership. Synopsis: `[.., x, arr] -> [.., x IN arr]`
  case `in`
  /// Sum, or concatenation when either side is a String. Synopsis: `[.., x, y] -> [.., x + y]`
  case add
  /// Synopsis: `[.., x, y] -> [.., x - y]`
  case subtract
  /// Synopsis: `[.., x, y] -> [.., x * y]`
  case multiply
  /// Division by zero gives Undefined. Synopsis: `[.., x, y] -> [.., x / y]`
  case divide
  /// Synopsis: `[.., x, y] -> [.., x % y]`
  case remainder
  /// Calls registry function A with the top B values; C is its prepared-state slot (-1 for none).
  /// Synopsis: `[.., a1..aB] -> [.., f[A](a1..aB)]`
  case call
  /// `cast(x AS T)`, T = `CastType` index A. Synopsis: `[.., x] -> [.., cast(x AS T[A])]`
  case cast
  /// Jumps to A. Synopsis: `pc = A`
  case jump
  /// Pops; jumps to A unless the value is true. Synopsis: `[.., c] -> [..]; if c != true: pc = A`
  case jumpIfNotTrue
  /// Jumps to A, leaving the top in place, when it is Undefined (a CASE subject).
  /// Synopsis: `[.., s] -> [.., s]; if s is Undefined: pc = A`
  case jumpIfUndefined
  /// Simple CASE test: pops the WHEN value; when it equals the subject, pops the subject too and
  /// continues; otherwise jumps to A, keeping the subject.
  /// Synopsis: `[.., s, w] -> [..] if s = w, else [.., s]; pc = A`
  case caseCompare
  /// Discards the top. Synopsis: `[.., x] -> [..]`
  case pop
  /// Builds an array from the top A values. Synopsis: `[.., x1..xA] -> [.., [x1..xA]]`
  case makeArray
  /// Builds an object from the top B values, keys = constants A..A+B-1; Undefined members dropped.
  /// Synopsis: `[.., v1..vB] -> [.., {K[A]: v1, ..}]`
  case makeObject
  /// Builds a SELECT list's result from the top B values under distinct keys = constants
  /// A..A+B-1 (also key list C of the program, shared by every result); Undefined members dropped.
  /// Synopsis: `[.., v1..vB] -> [.., {K[A]: v1, ..}]`
  case makeRecord
  /// Pushes an empty object: the SELECT result being built. Synopsis: `[..] -> [.., {}]`
  case newObject
  /// Pops a value and stores it in the object below at alias path constant A (an array of keys,
  /// building nested objects); an Undefined value is skipped.
  /// Synopsis: `[.., obj, v] -> [.., obj with K[A] = v]`
  case setMember
  /// Pops a value and copies its members into the object below (`*` in a SELECT list).
  /// Synopsis: `[.., obj, x] -> [.., obj + members(x)]`. A non-object adds nothing.
  case mergeMembers
  /// Starts a nested query: pops the FROM value; an array iterates its elements, an object is one
  /// element whose result is returned alone; anything else jumps to A with Undefined pushed. With
  /// B > 0 the query reads its elements only by the names listed in constant B - 1, and when payload
  /// path C is still in its bytes, those members are taken from them, the elements left unbuilt.
  /// Synopsis: `[.., from] -> [..]; frames.push(from)`
  case iterateBegin
  /// Moves to the next element of the innermost nested query, or jumps to A when done.
  /// Synopsis: `element = next(frame) else pc = A`
  case iterateNext
  /// Pops a per-element result into the innermost nested query's results (Undefined skipped).
  /// Synopsis: `[.., r] -> [..]; frame.results.append(r)`
  case iterateAppend
  /// Ends a nested query: pushes its results (an array; the single result for an object source).
  /// Synopsis: `[..] -> [.., results]`
  case iterateEnd
  /// WHERE was not true: stops with no match. Synopsis: `halt(no match)`
  case noMatch
  /// Stops with the top as the output. Synopsis: `[.., x] -> halt(x)`
  case output
  /// `SELECT *` alone: stops with the payload bytes as they are when they are what AWS would send
  /// (binary, or compact JSON), else with the re-serialised document. Synopsis: `halt(*)`
  case passthrough
  /// `SELECT *, e1 AS k1, ...` (C = 0) or `SELECT e1 AS k1, ..., *` (C = 1): stops with the
  /// payload's members and the top B values under distinct keys = constants A..A+B-1 (Undefined
  /// ones skipped), after the members for C = 0 and before them for C = 1, as `mergeMembers` and
  /// one `setMember` each, in the list's order, would build them. When the payload is an object
  /// whose bytes pass through (as for `passthrough`), has none of the keys (their payload paths are
  /// constants A+B..A+2B-1) and the values are scalars or strings, the values are written beside
  /// its bytes instead of the object being built. Synopsis: `[.., v1..vB] -> halt(* + {K[A]: v1, ..})`
  case passthroughPlus
  /// The statement's SELECT list, with payload paths among its items: stops with the object of
  /// B values under distinct keys = constants A..A+B-1 (also key list C; Undefined members
  /// dropped). Constant A+B+i is item i's payload path index, or -1 for a value on the stack (the
  /// stack's values in item order). A path's array or object that the reader found spelled as the
  /// writer would spell it (or so but for whitespace and number spellings) is written as its bytes
  /// (respelled), when the result is written out and every other value is a scalar or a string. Synopsis: `[.., v1..vN] -> halt({K[A]: v1 | path, ..})`
  case outputRecord
  /// `SELECT VALUE` of payload path A: stops with its value, or with its bytes (respelled where the
  /// writer spells them shorter) when it is an array or object the reader found spelled as the
  /// writer would spell it and the result is written out. Synopsis: `halt(path[A])`
  case outputPath

  /// The `Synopsis:` line, for `explain`.
  public var synopsis: String {
    switch self {
    case .constant: "push constants[A]"
    case .loadPath: "push payload path[A]"
    case .loadPayload: "push * (the whole payload)"
    case .loadRawPayload: "push the raw payload bytes"
    case .loadVariable: "push @var[A]"
    case .storeVariable: "@var[A] = pop"
    case .loadElement: "push the element of nested query A out"
    case .loadElementField: "push element.K[A]"
    case .member: "top = top.K[A]"
    case .negate: "top = -top"
    case .not: "top = NOT top"
    case .exists: "top = EXISTS top (a nested query's result)"
    case .or: "push pop2 OR pop1"
    case .and: "push pop2 AND pop1"
    case .equal: "push pop2 = pop1"
    case .notEqual: "push pop2 <> pop1"
    case .less: "push pop2 < pop1"
    case .lessOrEqual: "push pop2 <= pop1"
    case .greater: "push pop2 > pop1"
    case .greaterOrEqual: "push pop2 >= pop1"
    case .in: "push pop2 IN pop1"
    case .add: "push pop2 + pop1"
    case .subtract: "push pop2 - pop1"
    case .multiply: "push pop2 * pop1"
    case .divide: "push pop2 / pop1"
    case .remainder: "push pop2 % pop1"
    case .call: "push f[A](pop B args)"
    case .cast: "top = cast(top AS T[A])"
    case .jump: "goto A"
    case .jumpIfNotTrue: "if pop is not true goto A"
    case .jumpIfUndefined: "if top is Undefined goto A"
    case .caseCompare: "if pop = top: pop, else goto A"
    case .pop: "pop"
    case .makeArray: "push [pop A values]"
    case .makeObject: "push {K[A..]: pop B values}"
    case .makeRecord: "push {K[A..]: pop B values} (distinct keys)"
    case .newObject: "push {}"
    case .setMember: "top.K[A] = pop (skip Undefined)"
    case .mergeMembers: "top += members(pop)"
    case .iterateBegin: "begin nested query over pop; else goto A"
    case .iterateNext: "next element, or goto A"
    case .iterateAppend: "results += pop"
    case .iterateEnd: "push nested-query results"
    case .noMatch: "halt: no match"
    case .output: "halt: output pop"
    case .passthrough: "halt: output * unchanged"
    case .passthroughPlus: "halt: output * + {K[A..]: pop B values} (* last if C)"
    case .outputRecord: "halt: output {K[A..]: B paths or popped values}"
    case .outputPath: "halt: output payload path[A]"
    }
  }

  /// True for instructions whose operand A is a jump target.
  public var isJump: Bool {
    switch self {
    case .jump, .jumpIfNotTrue, .jumpIfUndefined, .caseCompare, .iterateBegin, .iterateNext: true
    default: false
    }
  }

  /// The name `explain` prints: the case name with a capital first letter (`LoadPath`).
  public var name: String {
    let text = String(describing: self)
    return text.prefix(1).uppercased() + text.dropFirst()
  }
}
