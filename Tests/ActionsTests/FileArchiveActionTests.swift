import CFileOps
import Foundation
import GRDB
import IoTSQL
import RulesEngine
import Synchronization
import TestSupport
import Testing

@testable import Actions

struct FileArchiveActionTests {
  @Test(
    arguments: [
      ("a/b.jsonl", nil), ("", "is empty"), ("/etc/passwd", "is absolute"),
      ("../x", "has a '..' segment"),
      ("a/../../x", "has a '..' segment"), ("a//b", "has an empty segment"),
      ("a/./b", "has a '.' segment"),
      ("a\u{0}b", "contains NUL"), ("a\nb.jsonl", "contains a control character (U+000A)"),
      ("x/\u{7F}/../y", "contains a control character (U+007F)"),
      // C1 controls too (NEL, CSI); the letters after 0xC2 are no controls.
      ("a\u{85}b", "contains a control character (U+0085)"),
      ("a\u{9B}[31m", "contains a control character (U+009B)"),
      ("caf\u{E9}/\u{A0}x", nil),
      // Line separators (a listing's `splitlines()` breaks there) and bidirectional controls
      // (`\u{202E}lmth.exe` shows as `exe.html`); other characters of those blocks are names.
      ("a\u{2028}b", "contains a line separator (U+2028)"),
      ("a/\u{2029}", "contains a line separator (U+2029)"),
      ("\u{202E}lmth.exe", "contains a bidirectional control character (U+202E)"),
      ("a\u{2066}b\u{2069}", "contains a bidirectional control character (U+2066)"),
      ("a\u{200F}", "contains a bidirectional control character (U+200F)"),
      ("a\u{61C}", "contains a bidirectional control character (U+061C)"),
      ("a\u{2014}b\u{2030}\u{2070}\u{60C}", nil),
      // Invisible characters: `a` and `a\u{200B}` were two folders `ls` showed alike; the
      // zero-width joiners, which scripts and emoji sequences use, are names.
      ("a\u{200B}", "contains an invisible character (U+200B)"),
      ("a\u{2060}/b", "contains an invisible character (U+2060)"),
      ("\u{FEFF}a", "contains an invisible character (U+FEFF)"),
      ("a\u{AD}b", "contains an invisible character (U+00AD)"),
      ("z\u{206B}", "contains an invisible character (U+206B)"),
      ("a\u{3164}", "contains an invisible character (U+3164)"),
      ("a\u{E0061}", "contains an invisible character (U+E0061)"),
      ("a\u{E0001}", "contains an invisible character (U+E0001)"),
      ("\u{1F469}\u{200D}\u{1F52C}/a\u{200C}b\u{AC}\u{FEFE}\u{2764}\u{FE0F}", nil),
      ("\u{1820}\u{180B}/a\u{34F}b/\u{115F}\u{1161}", nil),
      // A flag's tag sequence (England) is a name.
      ("\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}", nil),
    ] as [(String, String?)])
  func relativePathRules(_ path: String, _ problem: String?) {
    #expect(FileArchiveAction.problem(inRelativePath: path) == problem)
  }

  @Test func rootIsTheFolderBeforeTheFirstTemplate() throws {
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "archive/x/${topic(2)}/day.jsonl"}"#), context: context)
    #expect(action.root == "archive/x")
    let explicit = try FileArchiveAction(
      configuration: configuration(#"{"path": "${topic(2)}.jsonl", "root": "/tmp/arch/"}"#), context: context)
    #expect(explicit.root == "/tmp/arch")
    // A root is a folder: a template there was one folder named `${y}`.
    #expect {
      try FileArchiveAction(
        configuration: configuration(#"{"path": "${x}.jsonl", "root": "arch/${y}"}"#), context: context)
    } throws: { error in
      (error as? ActionConfigurationError)?.message.contains(
        "'root' is a folder, not a template: 'arch/${y}'") == true
    }
  }

  @Test func appendsLinesAndWritesBinaryAsBase64() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/out/all.jsonl", "fsync": "always"}"#),
      context: context)
    let results = await action.performBatch([
      input(object([("a", .int(1))]), json: #"{"a":1}"#),
      input(.binary([0xA5, 0x5A, 0x00]), json: ""),
      // `SELECT VALUE` of an Undefined: an empty payload, zero bytes (it was written as `{}`).
      input(.undefined, json: ""),
    ])
    #expect(results.allSatisfy { $0 == nil })
    await action.shutdown()
    let text = try String(contentsOfFile: "\(folder)/out/all.jsonl", encoding: .utf8)
    #expect(text == "{\"a\":1}\n{\"payload_base64\":\"pVoA\"}\n{\"payload_base64\":\"\"}\n")
  }

  /// A value holding U+2028, U+2029 or U+0085 is written with them escaped: the same JSON, and one
  /// line to Python's `splitlines`, which split a raw one's line in two.
  @Test func lineSeparatorsInValuesAreEscaped() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/out/all.jsonl"}"#), context: context)
    let json = "{\"a\":\"x\u{2028}y\u{2029}z\u{85}é€\"}"
    let results = await action.performBatch([input(object([("a", .string("x"))]), json: json)])
    #expect(results.allSatisfy { $0 == nil })
    await action.shutdown()
    let text = try String(contentsOfFile: "\(folder)/out/all.jsonl", encoding: .utf8)
    #expect(text == #"{"a":"x\u2028y\u2029z\u0085é€"}"# + "\n", "\(text.debugDescription)")
    #expect(try JSONReader.parse(Array(text.utf8.dropLast())) == JSONReader.parse(Array(json.utf8)))
  }

  /// Half the descriptor limit, at most 8,192: a limit of 64 leaves 32 for sockets and databases (a
  /// floor of 64 took them all, and the process crashed out of descriptors).
  @Test func openFilesAreHalfTheDescriptorLimit() {
    #expect(FileArchiveAction.maxOpenFiles(descriptorLimit: 64) == 32)
    #expect(FileArchiveAction.maxOpenFiles(descriptorLimit: 1024) == 512)
    #expect(FileArchiveAction.maxOpenFiles(descriptorLimit: 10_000) == 5_000)
    #expect(FileArchiveAction.maxOpenFiles(descriptorLimit: 1 << 20) == 8_192)
    #expect(FileArchiveAction.maxOpenFiles(descriptorLimit: 10) == 8)
  }

  /// A rendered path is taken in Unicode's composed form: `é` spelled either way names one file,
  /// whichever came first (the open files, kept by Swift strings, took the first one's file).
  @Test func renderedPathsAreComposed() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/out/${topic(2)}.jsonl"}"#), context: context)
    let results = await action.performBatch([
      input(object([("n", .int(1))]), json: #"{"n":1}"#, topic: "d/cafe\u{301}"),
      input(object([("n", .int(2))]), json: #"{"n":2}"#, topic: "d/caf\u{E9}"),
    ])
    #expect(results.allSatisfy { $0 == nil }, "\(results)")
    await action.shutdown()
    let names = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/out").map { Array($0.utf8) }
    #expect(names == [Array("caf\u{E9}.jsonl".utf8)])
    #expect(
      try String(contentsOfFile: "\(folder)/out/caf\u{E9}.jsonl", encoding: .utf8) == "{\"n\":1}\n{\"n\":2}\n"
    )
  }

  /// A path every rendering of which would be refused is refused at load, where `check` sees it.
  @Test(
    arguments: [
      (#"{"root": "archive", "path": "../escape/${topic(1)}.jsonl"}"#, "has a '..' segment"),
      (#"{"path": "archive/x/"}"#, "names no file below the archive root 'archive/x'"),
      (#"{"root": "archive", "path": "./${topic(1)}.jsonl"}"#, "has a '.' segment"),
      (#"{"path": "archive/${topic(1)}//a.jsonl"}"#, "has an empty segment"),
      // Not a path, but as sure to be unmeant: nothing would rotate.
      (#"{"path": "archive/a.jsonl", "rotate": {}}"#, "'rotate' is empty"),
      // A key cut short of its unit is suggested whole.
      (#"{"path": "archive/a.jsonl", "rotate": {"maxAge": 60}}"#, "did you mean 'maxAgeSeconds'?"),
    ])
  func pathsThatAlwaysFailAreRefusedAtLoad(_ text: String, _ problem: String) {
    #expect {
      try FileArchiveAction(configuration: configuration(text), context: context)
    } throws: { error in
      (error as? ActionConfigurationError)?.message.contains(problem) == true
    }
  }

  /// `check` shows every problem of the action at once, each where it is.
  @Test func everyConfigurationProblemIsReported() {
    let text = #"{"path": "a/${topic(}", "fsync": "often", "rotate": {"maxBytes": 0, "every": 1}, "mode": 1}"#
    expectProblems([
      "1:82 unknown key 'mode'", "1:21 file.path: in template: ", "1:69 unknown key 'rotate.every'",
      "1:66 'maxBytes' must be", "1:34 'fsync' must be",
    ]) { () throws(ActionConfigurationError) in
      _ = try FileArchiveAction(configuration: configuration(text), context: context)
    }
  }

  /// A whole number past 64 bits is said with the limit it passed, not as a number below 1.
  @Test func aCountPast64BitsSaysTheLimit() {
    expectProblems([
      "1:44 'maxBytes' must be a whole number of at most 9223372036854775807 (64 bits), not 1e30"
    ]) {
      () throws(ActionConfigurationError) in
      _ = try FileArchiveAction(
        configuration: configuration(#"{"path": "a.jsonl", "rotate": {"maxBytes": 1e30}}"#), context: context)
    }
  }

  @Test func pathsWithTemplatesOrPlainNamesLoad() throws {
    for text in [
      #"{"path": "archive/${topic(1)}/a.jsonl"}"#, #"{"path": "a.jsonl"}"#, #"{"path": "./a.jsonl"}"#,
      #"{"root": "/", "path": "x/${topic(1)}.jsonl"}"#, #"{"path": "archive/${topic(1)}..jsonl"}"#,
    ] {
      _ = try FileArchiveAction(configuration: configuration(text), context: context)
    }
  }

  @Test(arguments: ["1e19", "99999999999999999999", "9007199254740993", "1.5"])
  func rotationLimitsBeyondRangeAreRefused(_ number: String) {
    #expect(throws: ActionConfigurationError.self) {
      try FileArchiveAction(
        configuration: configuration(#"{"path": "a/b.jsonl", "rotate": {"maxAgeSeconds": \#(number)}}"#),
        context: context)
    }
  }

  @Test func rotatesBySize() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(
        #"{"path": "\#(folder)/r/a.jsonl", "rotate": {"maxBytes": 20}, "fsync": "never"}"#), context: context)
    for index in 0..<5 {
      let error = await action.performBatch([input(object([("n", .int(index))]), json: #"{"n":\#(index)}"#)])[
        0]
      #expect(error == nil)
    }
    await action.shutdown()
    // Rotated names sort as text in the order of rotation; the open file comes last.
    let rotated = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/r").filter {
      $0 != "a.jsonl"
    }
    .sorted()
    #expect(rotated.count == 2 && rotated.allSatisfy { $0.hasPrefix("a.jsonl.") }, "\(rotated)")
    var all: [String] = []
    for name in rotated + ["a.jsonl"] {
      all += try String(contentsOfFile: "\(folder)/r/\(name)", encoding: .utf8).split(separator: "\n").map(
        String.init)
    }
    #expect(all == (0..<5).map { #"{"n":\#($0)}"# })
  }

  /// Two actions (two rules) archiving to one file: each sees the other's lines and rotations, so
  /// no file grows past `maxBytes` and no line is lost or written into a rotated file twice.
  @Test func twoActionsShareOneFilesRotation() async throws {
    let folder = temporaryFolder()
    let text = #"{"path": "\#(folder)/r/a.jsonl", "rotate": {"maxBytes": 40}, "fsync": "never"}"#
    let first = try FileArchiveAction(configuration: configuration(text), context: context)
    let second = try FileArchiveAction(configuration: configuration(text), context: context)
    for index in 0..<20 {
      let action = index % 2 == 0 ? first : second
      let error = await action.performBatch([input(object([("n", .int(index))]), json: #"{"n":\#(index)}"#)])[
        0]
      #expect(error == nil)
    }
    await first.shutdown()
    await second.shutdown()
    let names = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/r")
    var lines: [String] = []
    for name in names {
      let content = try String(contentsOfFile: "\(folder)/r/\(name)", encoding: .utf8)
      #expect(content.utf8.count <= 40, "\(name): \(content.utf8.count) bytes")
      lines += content.split(separator: "\n").map(String.init)
    }
    #expect(lines.sorted() == (0..<20).map { #"{"n":\#($0)}"# }.sorted())
  }

  /// The same, with the two actions writing at the same time (as two rules' lanes do): no line of
  /// a batch that succeeded is lost to a rotation racing another, and no file passes `maxBytes`.
  @Test func twoActionsRotatingOneFileConcurrentlyLoseNothing() async throws {
    let folder = temporaryFolder()
    let text = #"{"path": "\#(folder)/r/${topic(2)}.jsonl", "rotate": {"maxBytes": 300}, "fsync": "never"}"#
    let actions = [
      try FileArchiveAction(configuration: configuration(text), context: context),
      try FileArchiveAction(configuration: configuration(text), context: context),
    ]
    let rounds = 200
    let failures = await withTaskGroup(of: Int.self) { group in
      for round in 0..<rounds {
        for (which, action) in actions.enumerated() {
          group.addTask {
            let inputs = (0..<8).map { index in
              let json = #"{"r":\#(round),"a":\#(which),"i":\#(index)}"#
              return input(object([("r", .int(round))]), json: json, topic: "s/d\(index % 2)")
            }
            return await action.performBatch(inputs).filter { $0 != nil }.count
          }
        }
      }
      return await group.reduce(0, +)
    }
    #expect(failures == 0)
    for action in actions { await action.shutdown() }
    var lines: [String] = []
    for name in try FileManager.default.contentsOfDirectory(atPath: "\(folder)/r") {
      let content = try String(contentsOfFile: "\(folder)/r/\(name)", encoding: .utf8)
      #expect(content.utf8.count <= 300, "\(name): \(content.utf8.count) bytes")
      lines += content.split(separator: "\n").map(String.init)
    }
    #expect(lines.count == rounds * 2 * 8)
    #expect(Set(lines).count == rounds * 2 * 8)
  }

  @Test func hostileTemplateValueIsRefused() async throws {
    // Needs the real template engine: ${deviceId} comes from the payload.
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/arch/${deviceId}/x.jsonl"}"#), context: context)
    let error = await action.performBatch([
      input(object([("deviceId", .string("../../etc"))]), json: #"{"deviceId":"../../etc"}"#)
    ])[0]
    #expect(error?.kind == .permanent)
    #expect(error?.message.contains("has a '..' segment") == true, "\(String(describing: error))")
    #expect(!FileManager.default.fileExists(atPath: "\(folder)/etc"))
  }

  /// A value naming a named pipe below the root held the open (and every archive action behind
  /// the lock) until a reader came; a device would swallow the lines. Each is refused, at once.
  @Test func aValueNamingAPipeOrADeviceIsRefused() async throws {
    let folder = temporaryFolder()
    try #require(mkfifo("\(folder)/pipe", 0o644) == 0)
    let action = try FileArchiveAction(
      configuration: configuration(#"{"root": "\#(folder)", "path": "${d}"}"#), context: context)
    let errors = await action.performBatch([
      input(object([("d", .string("pipe"))]), json: #"{"d":"pipe"}"#),
      input(object([("d", .string("ok.jsonl"))]), json: #"{"d":"ok.jsonl"}"#),
    ])
    #expect(errors[0]?.kind == .permanent)
    #expect(
      errors[0]?.message
        == "cannot open \(folder)/pipe: it is a named pipe; lines are appended to regular files only",
      "\(String(describing: errors[0]))")
    #expect(errors[1] == nil)
    #expect(FileManager.default.fileExists(atPath: "\(folder)/ok.jsonl"))
    #expect(FileArchiveAction.notRegular("x", S_IFCHR).message.contains("it is a device"))
  }

  /// A rendered path no file system takes is refused with its start shown, not all of it (a
  /// 400 KB path went whole into the log and the error record); a value too large to render fails
  /// the path, not the daemon's memory.
  @Test func pathsPastTheSystemsLimitsAreRefusedShortly() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"root": "\#(folder)", "path": "${d}/x.jsonl"}"#), context: context)
    let long = String(repeating: "\u{E9}", count: 3_000)
    let name = String(repeating: "n", count: 256)
    let errors = await action.performBatch(
      [long, name, "ok"].map { input(object([("d", .string($0))]), json: #"{"d":"\#($0)"}"#) })
    let first = try #require(errors[0]?.message)
    #expect(
      first.hasPrefix("rendered path '" + String(repeating: "\u{E9}", count: 100) + "… (6008 bytes)' is "))
    #expect(first.contains("(a path is at most 4095)") && first.utf8.count < 400, "\(first)")
    #expect(errors[0]?.kind == .permanent)
    #expect(
      errors[1]?.message.contains("has a name of 256 bytes (a name is at most 255)") == true,
      "\(String(describing: errors[1]))")
    #expect(errors[2] == nil)
  }

  /// A missing field renders as nothing: the error says so rather than only "absolute".
  @Test func aValueRenderedEmptyIsNamedAsTheCause() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"root": "\#(folder)", "path": "${dev}/x/${sub}/y.jsonl"}"#),
      context: context)
    let errors = await action.performBatch([
      input(object([("sub", .string("s"))]), json: #"{"sub":"s"}"#),
      input(object([("dev", .string("d"))]), json: #"{"dev":"d"}"#),
    ])
    #expect(
      errors[0]?.message.hasPrefix(
        "rendered path '/x/s/y.jsonl' begins with '/' (a value of '${dev}/x/${sub}/y.jsonl' rendered empty")
        == true,
      "\(String(describing: errors[0]))")
    #expect(
      errors[1]?.message.hasPrefix("rendered path 'd/x//y.jsonl' has an empty segment (a value of") == true,
      "\(String(describing: errors[1]))")
  }

  /// `${dev}.jsonl` without a dev wrote `.jsonl`, a file `ls` does not show; a value beginning
  /// with '.' is refused the same way. A path whose own text names a hidden folder may use one.
  @Test func aRenderedHiddenNameIsRefused() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"root": "\#(folder)", "path": "${dev}.jsonl"}"#), context: context)
    let errors = await action.performBatch([
      input(object([("x", .int(1))]), json: #"{"x":1}"#),
      input(object([("dev", .string(".profile"))]), json: #"{"dev":".profile"}"#),
      input(object([("dev", .string("d1"))]), json: #"{"dev":"d1"}"#),
    ])
    #expect(errors[0]?.kind == .permanent)
    #expect(
      errors[0]?.message.hasPrefix("rendered path '.jsonl' has a hidden name '.jsonl' (a value of") == true,
      "\(String(describing: errors[0]))")
    #expect(errors[1]?.message.contains("has a hidden name '.profile.jsonl'") == true)
    #expect(errors[2] == nil)
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["d1.jsonl"])
    let stateful = try FileArchiveAction(
      configuration: configuration(#"{"root": "\#(folder)", "path": ".state/${dev}.jsonl"}"#),
      context: context)
    #expect(
      await stateful.performBatch([input(object([("dev", .string("d2"))]), json: #"{"dev":"d2"}"#)]) == [nil])
    // Only where its own text does: the file name there is still checked.
    let refused = await stateful.performBatch([input(object([("x", .int(1))]), json: #"{"x":1}"#)])
    #expect(
      refused[0]?.message.contains("has a hidden name '.jsonl'") == true, "\(String(describing: refused[0]))")
    // A value holding '/' adds segments: the path's own hidden folder is still found, counted from
    // the end, and a hidden name the value brings is still refused.
    let nested = try FileArchiveAction(
      configuration: configuration(#"{"root": "\#(folder)", "path": "n/${dev}/.state/x.jsonl"}"#),
      context: context)
    let outcomes = await nested.performBatch([
      input(object([("dev", .string("a/b"))]), json: #"{"dev":"a/b"}"#),
      input(object([("dev", .string("a/.b"))]), json: #"{"dev":"a/.b"}"#),
    ])
    #expect(outcomes[0] == nil, "\(String(describing: outcomes[0]))")
    #expect(
      outcomes[1]?.message.contains("has a hidden name '.b'") == true, "\(String(describing: outcomes[1]))")
    #expect(FileManager.default.fileExists(atPath: "\(folder)/n/a/b/.state/x.jsonl"))
  }

  @Test func folderWhereAFileIsExpectedFails() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/blocked/a.jsonl"}"#), context: context)
    // Made after the action was configured (one there already is refused then: below).
    _ = FileManager.default.createFile(atPath: "\(folder)/blocked", contents: Data())
    let error = await action.performBatch([input(object([("a", .int(1))]), json: #"{"a":1}"#)])[0]
    #expect(error?.kind == .permanent)
    #expect(error?.message.contains("Not a directory") == true, "\(String(describing: error))")
  }

  /// What is on the disk when the rule loads that every write would fail on is refused where it is
  /// written (`check` says so), not sent down the error path result after result.
  @Test func whatIsInTheWayIsRefused() throws {
    let folder = temporaryFolder()
    _ = FileManager.default.createFile(atPath: "\(folder)/plain", contents: Data())
    #expect(symlink("\(folder)/plain", "\(folder)/link") == 0)
    let cases = [
      (
        #"{"path": "\#(folder)/plain/x/${topic(2)}.jsonl"}"#,
        "archive root '\(folder)/plain/x' cannot be made: '\(folder)/plain' is a file, not a folder"
      ),
      (
        #"{"root": "\#(folder)/plain", "path": "${topic(2)}.jsonl"}"#,
        "'\(folder)/plain' is a file, not a folder"
      ),
      (#"{"path": "/dev/null"}"#, "'path' /dev/null is a device, not a regular file"),
      (#"{"path": "\#(folder)"}"#, "is a folder, not a regular file"),
      (#"{"root": "\#(folder)", "path": "plain/a.jsonl"}"#, "'\(folder)/plain' is a file, not a folder"),
      // The archive follows no link to its file (O_NOFOLLOW): every write would fail.
      (#"{"path": "\#(folder)/link"}"#, "'path' \(folder)/link is a symbolic link, which is not followed"),
    ]
    expectRefused(cases) { (node: RuleNode) throws(ActionConfigurationError) in
      _ = try FileArchiveAction(configuration: node, context: context)
    }
    // An existing regular file is appended to; a missing folder is made; `$${` is written as `${`.
    for text in [
      #"{"path": "\#(folder)/plain"}"#, #"{"path": "\#(folder)/new/${topic(2)}.jsonl"}"#,
      #"{"path": "\#(folder)/$${x}/a.jsonl"}"#,
    ] {
      #expect(throws: Never.self) {
        _ = try FileArchiveAction(configuration: configuration(text), context: context)
      }
    }
  }

  @Test func batchSyncCoversEveryFileAndReportsEachFailure() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/m/${k}.jsonl"}"#), context: context)
    let inputs = (0..<30).map { index in
      input(
        object([("k", .string("f\(index % 6)")), ("n", .int(index))]),
        json: #"{"k":"f\#(index % 6)","n":\#(index)}"#)
    }
    let results = await action.performBatch(inputs)
    #expect(results.allSatisfy { $0 == nil })
    await action.shutdown()
    for file in 0..<6 {
      let lines = try String(contentsOfFile: "\(folder)/m/f\(file).jsonl", encoding: .utf8).split(
        separator: "\n")
      #expect(lines.count == 5)
    }
    let good = open("\(folder)/m/f0.jsonl", O_RDONLY)
    defer { close(good) }
    let failures = FileArchiveAction.syncAll(["good": good, "bad1": -1, "bad2": 999_999])
    #expect(failures == ["bad1": EBADF, "bad2": EBADF])
    #expect(FileArchiveAction.syncAll(["only": -1]) == ["only": EBADF])
  }

  /// A file whose last line a write cut short, on a disk too full for the newline that ends it:
  /// the failure says what the file holds and why it was written to (it said only `write F: No
  /// space left on device`, which the daemon's start printed for its dead-letter file), and nothing
  /// is glued to the part.
  @Test func endingACutLineOnAFullDiskSaysSo() throws {
    let path = temporaryFolder() + "/dl.jsonl"
    try Data(#"{"ruleName":"r","to"#.utf8).write(to: URL(fileURLWithPath: path))
    let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
    #expect(fd >= 0)
    defer { close(fd) }
    let full = FileOperations(
      write: { _, _, _ in
        errno = ENOSPC
        return -1
      }, sync: FileOperations.system.sync)
    #expect {
      try FileSystem.endCutLine(fd, path: path, operations: full)
    } throws: { error in
      let message = (error as? ActionError)?.message ?? ""
      return message.contains("\(path) ends in the part of a line a write cut short")
        && message.hasSuffix("ending that line failed: write \(path): No space left on device")
    }
    #expect(try String(contentsOfFile: path, encoding: .utf8) == #"{"ruleName":"r","to"#)
  }

  /// A line another writer is appending, holding the file's lock (a second daemon archiving to the
  /// same file), is no cut line: ending it waits for the lock and, while another holds it, leaves
  /// the file alone. Two daemons rotating one file said a whole record was a part, and a blank line
  /// followed it. Once no one holds the lock, a part is ended.
  @Test func aLineAnotherWriterHoldsIsNotEnded() throws {
    let path = temporaryFolder() + "/shared.jsonl"
    try Data((#"{"seq":1}"# + #"{"seq":2,"ha"#).utf8).write(to: URL(fileURLWithPath: path))
    let (mine, theirs) = (
      open(path, O_WRONLY | O_APPEND | O_CLOEXEC), open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
    )
    defer {
      close(mine)
      close(theirs)
    }
    #expect(flock(theirs, LOCK_EX) == 0)
    try FileSystem.endCutLine(mine, path: path)
    #expect(try String(contentsOfFile: path, encoding: .utf8) == #"{"seq":1}{"seq":2,"ha"#)
    #expect(flock(theirs, LOCK_UN) == 0)
    try FileSystem.endCutLine(mine, path: path)
    #expect(try String(contentsOfFile: path, encoding: .utf8) == #"{"seq":1}{"seq":2,"ha"# + "\n")
  }

  /// Appends and their cut-backs hold the file's lock: another daemon appending to the same file
  /// (another open file description) waits, so a cut-back is to this write's own start (two
  /// daemons on a full disk left a torn line with the next line glued onto it).
  @Test func appendsHoldTheFilesLock() throws {
    let path = temporaryFolder() + "/shared.jsonl"
    let (mine, theirs) = (open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644), open(path, O_WRONLY | O_APPEND))
    defer {
      close(mine)
      close(theirs)
    }
    let lockedMeanwhile = Mutex<[Bool]>([])
    let checking = FileOperations(
      write: { descriptor, bytes, count in
        let refused = flock(theirs, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK
        if !refused { flock(theirs, LOCK_UN) }
        lockedMeanwhile.withLock { $0.append(refused) }
        return Glibc.write(descriptor, bytes, count)
      }, sync: FileOperations.system.sync)
    try FileSystem.writeAll(mine, Array("{\"n\":1}\n".utf8), path: path, operations: checking)
    #expect(lockedMeanwhile.withLock { $0 } == [true])
    // Released after: the other daemon takes it.
    #expect(flock(theirs, LOCK_EX | LOCK_NB) == 0)
    // A lock another program keeps is waited for briefly, not for ever: the line goes on
    // without it (the blocking wait held every archive action, and the stop, as long as it kept it).
    let started = ContinuousClock.now
    try FileSystem.writeAll(mine, Array("{\"n\":2}\n".utf8), path: path)
    #expect(ContinuousClock.now - started < .seconds(2))
    flock(theirs, LOCK_UN)
    #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"n\":1}\n{\"n\":2}\n")
  }

  /// `write(2)` that writes half of what it is given once, then fails with ENOSPC.
  static func tornWrites() -> FileOperations {
    let calls = Counter()
    return FileOperations(
      write: { descriptor, bytes, count in
        if calls.next() == 0 { return Glibc.write(descriptor, bytes, max(1, count / 2)) }
        errno = ENOSPC
        return -1
      }, sync: FileOperations.system.sync)
  }

  /// `fsync(2)` that fails with EIO on the calls `failing` (counted from 0).
  static func failingSyncs(_ failing: @escaping @Sendable (Int) -> Bool) -> FileOperations {
    let calls = Counter()
    return FileOperations(
      write: FileOperations.system.write,
      sync: { descriptor in
        if failing(calls.next()) {
          errno = EIO
          return -1
        }
        return fsync(descriptor)
      })
  }

  /// A new file's name is durable only once its folder is fsynced: so are new folders, a new file
  /// and a rotation (fsync "batch"); with "never", no folder is.
  @Test func newFilesAndRotationsSyncTheirFolders() async throws {
    let folder = temporaryFolder()
    let synced = Mutex<[String]>([])
    let recording = FileOperations(
      write: FileOperations.system.write,
      sync: { descriptor in
        var info = stat()
        fstat(descriptor, &info)
        if info.st_mode & S_IFMT == S_IFDIR {
          var path = [CChar](repeating: 0, count: 4096)
          let length = readlink("/proc/self/fd/\(descriptor)", &path, path.count - 1)
          synced.withLock {
            $0.append(String(decoding: path.prefix(max(0, length)).map(UInt8.init), as: UTF8.self))
          }
        }
        return fsync(descriptor)
      })
    for mode in ["batch", "never"] {
      synced.withLock { $0 = [] }
      let action = try FileArchiveAction(
        configuration: configuration(
          #"{"path": "\#(folder)/\#(mode)/${topic(2)}/a.jsonl", "rotate": {"maxBytes": 10}, "fsync": "\#(mode)"}"#
        ),
        context: context)
      action.operations.withLock { $0 = recording }
      #expect(await action.performBatch([numbered(1)]) == [nil])
      #expect(await action.performBatch([numbered(2)]) == [nil])
      await action.shutdown()
      let real = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
      if mode == "batch" {
        // Creating mode/d1 and the file: the folders holding them; the rotation and the new file:
        // mode/d1 again.
        #expect(
          synced.withLock { $0 } == [
            real, "\(real)/batch", "\(real)/batch/d1", "\(real)/batch/d1", "\(real)/batch/d1",
          ])
      } else {
        #expect(synced.withLock { $0 }.isEmpty)
      }
    }
  }

  /// A new file whose folder fsync failed has it done again by the retry, though the file exists by
  /// then: its lines are acknowledged only once its name is durable.
  @Test func aFailedFolderSyncIsDoneAgainByTheRetry() async throws {
    let folder = temporaryFolder()
    let folderSyncs = Mutex((attempts: 0, failing: true))
    let flaky = FileOperations(
      write: FileOperations.system.write,
      sync: { descriptor in
        var info = stat()
        fstat(descriptor, &info)
        guard info.st_mode & S_IFMT == S_IFDIR else { return fsync(descriptor) }
        let failing = folderSyncs.withLock { state -> Bool in
          state.attempts += 1
          return state.failing
        }
        if failing {
          errno = EIO
          return -1
        }
        return fsync(descriptor)
      })
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/owed/${topic(2)}.jsonl"}"#), context: context)
    action.operations.withLock { $0 = flaky }
    let first = await action.performBatch([input(object([("n", .int(1))]), json: #"{"n":1}"#, topic: "s/a")])
    #expect(first[0]?.kind == .transient)
    folderSyncs.withLock { $0 = (0, false) }
    let retry = await action.performBatch([input(object([("n", .int(1))]), json: #"{"n":1}"#, topic: "s/a")])
    #expect(retry == [nil])
    #expect(folderSyncs.withLock { $0.attempts } > 0)
    // Done: the next file open needs none.
    await action.shutdown()
    folderSyncs.withLock { $0 = (0, false) }
    let again = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/owed/${topic(2)}.jsonl"}"#), context: context)
    again.operations.withLock { $0 = flaky }
    #expect(
      await again.performBatch([input(object([("n", .int(2))]), json: #"{"n":2}"#, topic: "s/a")]) == [nil])
    #expect(folderSyncs.withLock { $0.attempts } == 0)
    await again.shutdown()
  }

  /// A rotated file is named for the UTC time of its rotation, `-0001` and up after it when the
  /// name is taken: the names sort as text in the order of rotation, and a name an upload job
  /// removed is not used again (a number one past the highest left was: after all were removed,
  /// `a.jsonl.1` came again and replaced yesterday's object of that name).
  @Test func rotatedNamesAreTimesNeverUsedTwice() async throws {
    #expect(
      FileArchiveAction.rotatedName(of: "r/a.jsonl", at: 1_733_322_190_123, attempt: 0)
        == "r/a.jsonl.20241204T142310.123Z")
    #expect(FileArchiveAction.rotatedName(of: "a", at: 5, attempt: 12) == "a.19700101T000000.005Z-0012")
    let folder = temporaryFolder()
    let clock = SteppingClock(now: 1_733_322_190_123)
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/r/a.jsonl", "rotate": {"maxBytes": 10}}"#),
      context: context, clock: clock)
    // Three rotations in one millisecond, then a move of every rotated file (an upload), then two more.
    for n in 0..<4 {
      #expect(await action.performBatch([input(object([("n", .int(n))]), json: #"{"n":\#(n)}"#)]) == [nil])
    }
    func rotated() throws -> [String] {
      try FileManager.default.contentsOfDirectory(atPath: "\(folder)/r").filter { $0 != "a.jsonl" }.sorted()
    }
    #expect(
      try rotated()
        == [
          "a.jsonl.20241204T142310.123Z", "a.jsonl.20241204T142310.123Z-0001",
          "a.jsonl.20241204T142310.123Z-0002",
        ])
    let uploaded = "\(folder)/uploaded"
    try FileManager.default.moveItem(atPath: "\(folder)/r", toPath: uploaded)
    try FileManager.default.createDirectory(atPath: "\(folder)/r", withIntermediateDirectories: true)
    try FileManager.default.moveItem(atPath: "\(uploaded)/a.jsonl", toPath: "\(folder)/r/a.jsonl")
    clock.advance(milliseconds: 61_000)
    for n in 4..<6 {
      #expect(await action.performBatch([input(object([("n", .int(n))]), json: #"{"n":\#(n)}"#)]) == [nil])
    }
    await action.shutdown()
    #expect(try rotated() == ["a.jsonl.20241204T142411.123Z", "a.jsonl.20241204T142411.123Z-0001"])
    var lines: [String] = []
    for path in try FileManager.default.contentsOfDirectory(atPath: uploaded).sorted().map({
      "\(uploaded)/\($0)"
    })
      + (try rotated() + ["a.jsonl"]).map({ "\(folder)/r/\($0)" })
    {
      lines += try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }
    #expect(lines == (0..<6).map { #"{"n":\#($0)}"# })
  }

  /// Each rotation is named for its own time, read when it happens: a batch's rotations were all
  /// named for the batch's time (23 of them for one millisecond over 0.63 s), seconds early, and
  /// another daemon's rotations of the same file sorted between them.
  @Test func eachRotationIsNamedForItsOwnTime() async throws {
    /// A clock one second later at each reading.
    final class Ticking: EngineClock, Sendable {
      let ms = Mutex(1_733_322_190_000)
      func nowMs() -> Int {
        ms.withLock {
          $0 += 1_000; return $0
        }
      }
      func monotonicNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
      func sleep(milliseconds: Int) async throws {}
    }
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/a.jsonl", "rotate": {"maxBytes": 10}}"#),
      context: context, clock: Ticking())
    let results = await action.performBatch(
      (0..<3).map { input(object([("n", .int($0))]), json: #"{"n":\#($0)}"#) })
    await action.shutdown()
    #expect(results == [nil, nil, nil])
    let rotated = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0 != "a.jsonl" }
      .sorted()
    // The batch read the clock once (14:23:11); each of its two rotations again (:12, then :13).
    #expect(rotated == ["a.jsonl.20241204T142312.000Z", "a.jsonl.20241204T142313.000Z"], "\(rotated)")
  }

  /// A file closed for the open-files limit keeps its age: opened again, it rotates once
  /// `maxAgeSeconds` have passed since it was first opened (its age began again, and a file
  /// written in turn with more than the limit never rotated).
  @Test func aFileClosedForTheLimitKeepsItsAge() async throws {
    let folder = temporaryFolder()
    let clock = SteppingClock()
    let action = try FileArchiveAction(
      configuration: configuration(
        #"{"path": "\#(folder)/m/${k}.jsonl", "rotate": {"maxAgeSeconds": 10}, "fsync": "never"}"#),
      context: context, clock: clock, budget: FileArchiveAction.OpenFileBudget(limit: 2))
    func line(_ name: String) -> ActionInput {
      input(object([("k", .string(name))]), json: #"{"k":"\#(name)"}"#)
    }
    // Three files written in turn through two open ones, 4 s apart: each is closed and opened again
    // every time.
    for step in 0..<9 {
      #expect(await action.performBatch([line(["a", "b", "c"][step % 3])]) == [nil])
      clock.advance(milliseconds: 4_000)
    }
    await action.shutdown()
    let names = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/m")
    // a: written at 0, 12 and 24 s: rotated at 12 (12 s old) and 24 (the file opened at 12); b
    // and c the same, 4 and 8 s later.
    for name in ["a", "b", "c"] {
      #expect(names.filter { $0.hasPrefix("\(name).jsonl.") }.count == 2, "\(names.sorted())")
    }
  }

  /// A file no line reached for `closeIdleSeconds` is closed, and one `maxAgeSeconds` old is
  /// rotated on time, whether or not another line comes for it (open or closed meanwhile).
  @Test func idleFilesCloseAndOldOnesRotateWithoutAnotherLine() async throws {
    let folder = temporaryFolder()
    let clock = SteppingClock()
    let action = try FileArchiveAction(
      configuration: configuration(
        #"{"path": "\#(folder)/s/${k}.jsonl", "rotate": {"maxAgeSeconds": 10}, "closeIdleSeconds": 3}"#),
      context: context, clock: clock)
    func line(_ name: String) -> ActionInput {
      input(object([("k", .string(name))]), json: #"{"k":"\#(name)"}"#)
    }
    func names() throws -> [String] {
      try FileManager.default.contentsOfDirectory(atPath: "\(folder)/s").sorted()
    }
    func open() -> Set<String> {
      action.files.withLock { Set($0.keys.map { ($0 as NSString).lastPathComponent }) }
    }
    #expect(await action.performBatch([line("a"), line("b")]) == [nil, nil])
    clock.advance(milliseconds: 2_000)
    #expect(await action.performBatch([line("b")]) == [nil])
    clock.advance(milliseconds: 2_000)
    // a: 4 s without a line, closed; b: 2 s, open.
    #expect(await action.sweep())
    #expect(open() == ["b.jsonl"])
    #expect(try names() == ["a.jsonl", "b.jsonl"])
    clock.advance(milliseconds: 5_000)
    // 9 s: b idle for 7 s is closed too; neither is 10 s old yet.
    #expect(await action.sweep())
    #expect(open().isEmpty)
    #expect(try names() == ["a.jsonl", "b.jsonl"])
    clock.advance(milliseconds: 1_000)
    // 10 s: both rotated, closed as they are; nothing is left to watch.
    #expect(await action.sweep() == false)
    let rotated = try names()
    #expect(rotated.count == 2 && rotated.allSatisfy { $0.contains(".jsonl.2023") }, "\(rotated)")
    #expect(
      try String(contentsOfFile: "\(folder)/s/\(rotated[1])", encoding: .utf8)
        == "{\"k\":\"b\"}\n{\"k\":\"b\"}\n")
    // The next line starts a new file.
    #expect(await action.performBatch([line("a")]) == [nil])
    #expect(try names().count == 3)
    await action.shutdown()
  }

  /// An open file reaching `maxAgeSeconds` is rotated by the sweep, though it was written to just now.
  @Test func anOpenFileIsRotatedOnTimeByTheSweep() async throws {
    let folder = temporaryFolder()
    let clock = SteppingClock()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/t/a.jsonl", "rotate": {"maxAgeSeconds": 5}}"#),
      context: context, clock: clock)
    for step in 0..<5 {
      #expect(
        await action.performBatch([numbered(step)]) == [nil])
      clock.advance(milliseconds: 1_000)
      // Rotated at 5 s, and closed: nothing left to watch.
      #expect(await action.sweep() == (step < 4))
    }
    #expect(action.files.withLock { $0.isEmpty })
    let names = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/t")
    #expect(names.count == 1 && names[0].hasPrefix("a.jsonl.2023"), "\(names)")
    await action.shutdown()
  }

  /// A file's age runs from its creation: one left from before a restart (or a reload) is rotated
  /// by the first line once it is `maxAgeSeconds` old, not kept for as long again.
  @Test func aFileLeftFromBeforeIsAsOldAsItIs() async throws {
    let folder = temporaryFolder()
    try FileManager.default.createDirectory(atPath: "\(folder)/u", withIntermediateDirectories: true)
    try Data("{\"n\":0}\n".utf8).write(to: URL(fileURLWithPath: "\(folder)/u/a.jsonl"))
    var born: Int64 = 0
    let descriptor = Glibc.open("\(folder)/u/a.jsonl", O_RDONLY)
    defer { close(descriptor) }
    // Where the file system keeps no birth time the age runs from the first open, as it did.
    guard iotrules_birth_time_ms(descriptor, &born) == 0 else { return }
    try await Task.sleep(nanoseconds: 1_100_000_000)
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/u/a.jsonl", "rotate": {"maxAgeSeconds": 1}}"#),
      context: context)
    #expect(await action.performBatch([numbered(1)]) == [nil])
    await action.shutdown()
    let names = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/u").sorted()
    #expect(names.count == 2 && names[1].hasPrefix("a.jsonl.2"), "\(names)")
    #expect(try String(contentsOfFile: "\(folder)/u/a.jsonl", encoding: .utf8) == "{\"n\":1}\n")
    #expect(try String(contentsOfFile: "\(folder)/u/\(names[1])", encoding: .utf8) == "{\"n\":0}\n")
  }

  /// A rule version that stops (a reload replaced or removed it) leaves its files to the sweeper,
  /// which rotates them when their age comes; the next version opening one goes on with its age.
  @Test func filesOfAStoppedVersionAreRotatedOnTime() async throws {
    let folder = temporaryFolder()
    let clock = SteppingClock()
    let sweeper = ArchiveSweeper()
    let settings = #"{"path": "\#(folder)/o/${k}.jsonl", "rotate": {"maxAgeSeconds": 10}}"#
    func line(_ name: String) -> ActionInput {
      input(object([("k", .string(name))]), json: #"{"k":"\#(name)"}"#)
    }
    let first = try FileArchiveAction(
      configuration: configuration(settings), context: context, clock: clock, sweeper: sweeper)
    #expect(await first.performBatch([line("a"), line("b")]) == [nil, nil])
    await first.shutdown()
    #expect(
      Set(sweeper.state.withLock { $0.orphans.keys }) == ["\(folder)/o/a.jsonl", "\(folder)/o/b.jsonl"])
    clock.advance(milliseconds: 4_000)
    // The next version writes a at 4 s: it takes a over, its age from 0 s.
    let second = try FileArchiveAction(
      configuration: configuration(settings), context: context, clock: clock, sweeper: sweeper)
    #expect(await second.performBatch([line("a")]) == [nil])
    #expect(sweeper.state.withLock { Array($0.orphans.keys) } == ["\(folder)/o/b.jsonl"])
    clock.advance(milliseconds: 6_000)
    sweeper.sweepOrphans()
    #expect(await second.sweep() == false)
    let names = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/o").sorted()
    #expect(names.count == 2 && names.allSatisfy { $0.contains(".jsonl.2023") }, "\(names)")
    #expect(sweeper.state.withLock { $0.orphans.isEmpty })
    await second.shutdown()
  }

  /// A stopped version's file is rotated beneath its root, through no link: with its folder moved
  /// out of the root and a link put in its place, the file outside was renamed.
  @Test func aStoppedVersionsFileIsRotatedBeneathItsRoot() async throws {
    let folder = temporaryFolder()
    let clock = SteppingClock()
    let sweeper = ArchiveSweeper()
    let manager = FileManager.default
    try manager.createDirectory(atPath: "\(folder)/outside", withIntermediateDirectories: true)
    let settings = #"{"path": "d/a.jsonl", "root": "\#(folder)/root", "rotate": {"maxAgeSeconds": 10}}"#
    let first = try FileArchiveAction(
      configuration: configuration(settings), context: context, clock: clock, sweeper: sweeper)
    #expect(await first.performBatch([numbered(1)]) == [nil])
    await first.shutdown()
    #expect(sweeper.state.withLock { Array($0.orphans.keys) } == ["\(folder)/root/d/a.jsonl"])
    try manager.moveItem(atPath: "\(folder)/root/d", toPath: "\(folder)/outside/d")
    try manager.createSymbolicLink(atPath: "\(folder)/root/d", withDestinationPath: "\(folder)/outside/d")
    clock.advance(milliseconds: 10_000)
    sweeper.sweepOrphans()
    #expect(try manager.contentsOfDirectory(atPath: "\(folder)/outside/d") == ["a.jsonl"])
    #expect(try String(contentsOfFile: "\(folder)/outside/d/a.jsonl", encoding: .utf8) == "{\"n\":1}\n")
  }

  /// A file another rule rotated (or logrotate moved, or a job removed) is closed by the next sweep
  /// of every action holding it, not at its idle time: its space is not held.
  @Test func aFileRotatedByAnotherRuleIsClosedByTheSweep() async throws {
    let folder = temporaryFolder()
    let clock = SteppingClock()
    let rotating = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/p/a.jsonl", "rotate": {"maxAgeSeconds": 3}}"#),
      context: context, clock: clock)
    let plain = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/p/a.jsonl"}"#), context: context, clock: clock)
    #expect(await rotating.performBatch([numbered(1)]) == [nil])
    #expect(await plain.performBatch([numbered(2)]) == [nil])
    clock.advance(milliseconds: 3_000)
    #expect(await rotating.sweep() == false)
    #expect(plain.files.withLock { $0.count } == 1)
    #expect(await plain.sweep() == false)
    #expect(plain.files.withLock { $0.isEmpty })
    let names = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/p")
    #expect(names.count == 1 && names[0].hasPrefix("a.jsonl.2023"), "\(names)")
  }

  /// A file emptied under the archive (logrotate's copytruncate) is not rotated empty, and its age
  /// begins again when the emptying is seen (the next sweep, or the next batch).
  @Test func anEmptiedFileIsNotRotatedEmpty() async throws {
    let folder = temporaryFolder()
    let clock = SteppingClock()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/q/a.jsonl", "rotate": {"maxAgeSeconds": 10}}"#),
      context: context, clock: clock)
    #expect(await action.performBatch([numbered(1)]) == [nil])
    #expect(truncate("\(folder)/q/a.jsonl", 0) == 0)
    clock.advance(milliseconds: 10_000)
    #expect(await action.sweep())
    #expect(try FileManager.default.contentsOfDirectory(atPath: "\(folder)/q") == ["a.jsonl"])
    clock.advance(milliseconds: 5_000)
    #expect(await action.performBatch([numbered(2)]) == [nil])
    clock.advance(milliseconds: 4_000)
    // 19 s after the first line, 9 s after the emptying was seen: not old yet.
    #expect(await action.sweep())
    #expect(try FileManager.default.contentsOfDirectory(atPath: "\(folder)/q") == ["a.jsonl"])
    clock.advance(milliseconds: 1_000)
    #expect(await action.sweep() == false)
    let names = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/q")
    #expect(names.count == 1 && names[0].hasPrefix("a.jsonl.2023"), "\(names)")
    #expect(try String(contentsOfFile: "\(folder)/q/\(names[0])", encoding: .utf8) == "{\"n\":2}\n")
  }

  /// A file the action has open, left by another writer with the part of a line (a second daemon
  /// killed while appending, a file cut back mid-line): the next line starts its own line, as at
  /// opening; it was glued to the part, acknowledged and unreadable.
  @Test func aCutLineAnotherWriterLeavesInAnOpenFileIsEnded() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/c/a.jsonl", "fsync": "never"}"#), context: context)
    let path = "\(folder)/c/a.jsonl"
    #expect(await action.performBatch([numbered(1)]) == [nil])
    let other = open(path, O_WRONLY | O_APPEND)
    #expect(other >= 0)
    #expect(write(other, #"{"torn":"zz"#, 11) == 11)
    close(other)
    #expect(await action.performBatch([numbered(2)]) == [nil])
    #expect(truncate(path, 23) == 0)
    #expect(await action.performBatch([numbered(3)]) == [nil])
    await action.shutdown()
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    #expect(lines == [#"{"n":1}"#, #"{"torn":"zz"#, #"{"n"#, #"{"n":3}"#], "\(lines)")
  }

  /// An emptied file closed as idle and opened again keeps the age that began at the emptying,
  /// not its older birth time (its new lines were rotated seconds early).
  @Test func anEmptiedFileKeepsItsNewAgeAcrossAnIdleClose() async throws {
    let folder = temporaryFolder()
    // The clock at the real time: the file's birth time is the real one.
    let clock = SteppingClock(now: Int(Date().timeIntervalSince1970 * 1000))
    let action = try FileArchiveAction(
      configuration: configuration(
        #"{"path": "\#(folder)/q/a.jsonl", "rotate": {"maxAgeSeconds": 10}, "closeIdleSeconds": 1}"#),
      context: context, clock: clock)
    #expect(await action.performBatch([numbered(1)]) == [nil])
    #expect(truncate("\(folder)/q/a.jsonl", 0) == 0)
    clock.advance(milliseconds: 3_000)
    #expect(await action.performBatch([numbered(2)]) == [nil])
    clock.advance(milliseconds: 2_000)
    _ = await action.sweep()
    #expect(action.files.withLock { $0.isEmpty }, "closed as idle")
    clock.advance(milliseconds: 6_000)
    // 11 s after the birth, 8 s after the emptying: not old yet.
    #expect(await action.performBatch([numbered(3)]) == [nil])
    #expect(try FileManager.default.contentsOfDirectory(atPath: "\(folder)/q") == ["a.jsonl"])
    await action.shutdown()
  }

  /// A version without `rotate` takes over the file the version before left to the sweeper: the
  /// sweeper rotated the file it was writing once its old age came.
  @Test func aVersionWithoutRotateTakesTheFileOver() async throws {
    let folder = temporaryFolder()
    let clock = SteppingClock()
    let sweeper = ArchiveSweeper()
    let first = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/o/a.jsonl", "rotate": {"maxAgeSeconds": 4}}"#),
      context: context, clock: clock, sweeper: sweeper)
    #expect(await first.performBatch([numbered(1)]) == [nil])
    await first.shutdown()
    let second = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/o/a.jsonl"}"#), context: context, clock: clock,
      sweeper: sweeper)
    #expect(await second.performBatch([numbered(2)]) == [nil])
    #expect(sweeper.state.withLock { $0.orphans.isEmpty })
    clock.advance(milliseconds: 5_000)
    sweeper.sweepOrphans()
    #expect(try FileManager.default.contentsOfDirectory(atPath: "\(folder)/o") == ["a.jsonl"])
    await second.shutdown()
  }

  /// With rotation, a value that renders a rotated file's name is refused: it wrote to a file
  /// closed for good. Without, such a name is a name (one file per timestamp).
  @Test func aRenderedRotatedNameIsRefused() async throws {
    let folder = temporaryFolder()
    let plain = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/p/${k}"}"#), context: context)
    #expect(
      await plain.performBatch([
        input(object([("k", .string("x.20261206T082817.743Z"))]), json: #"{"k":"x.20261206T082817.743Z"}"#)
      ]) == [nil])
    await plain.shutdown()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/r/${k}", "rotate": {"maxBytes": 1000000}}"#),
      context: context)
    let forged = await action.performBatch([
      input(object([("k", .string("x.20261206T082817.743Z"))]), json: #"{"k":"x.20261206T082817.743Z"}"#),
      input(
        object([("k", .string("x.20261206T082817.743Z-0001"))]), json: #"{"k":"x.20261206T082817.743Z-0001"}"#
      ),
      input(object([("k", .string("x.2026"))]), json: #"{"k":"x.2026"}"#),
    ])
    #expect(forged[0]?.kind == .permanent && forged[0]?.message.contains("rotated") == true, "\(forged)")
    #expect(forged[1]?.kind == .permanent)
    #expect(forged[2] == nil)
    await action.shutdown()
  }

  /// Past the budget, an action with no other file of its own closes another action's least
  /// recently written file (120 rules with a file each at a limit of 100 opened 88, and the rest
  /// failed with EMFILE, their error action's file too).
  @Test func theBudgetHoldsAcrossActions() async throws {
    let folder = temporaryFolder()
    let budget = FileArchiveAction.OpenFileBudget(limit: 2)
    let sweeper = ArchiveSweeper()
    let clock = SteppingClock()
    var actions: [FileArchiveAction] = []
    for index in 0..<4 {
      let action = try FileArchiveAction(
        configuration: configuration(#"{"path": "\#(folder)/b/\#(index).jsonl"}"#), context: context,
        clock: clock, budget: budget, sweeper: sweeper)
      #expect(await action.performBatch([numbered(index)]) == [nil])
      #expect(budget.open.load(ordering: .relaxed) <= 2)
      actions.append(action)
      clock.advance(milliseconds: 1_000)
    }
    // The least recently written files went: 0's, then 1's.
    #expect(actions.map { $0.files.withLock(\.count) } == [0, 0, 1, 1])
    // A closed file's next line opens it again.
    #expect(await actions[0].performBatch([numbered(4)]) == [nil])
    #expect(budget.open.load(ordering: .relaxed) == 2)
    for action in actions { await action.shutdown() }
    #expect(try String(contentsOfFile: "\(folder)/b/0.jsonl", encoding: .utf8) == "{\"n\":0}\n{\"n\":4}\n")
  }

  /// At start, the files an earlier run of the archive left below the root (marked with its path)
  /// are found and rotated when their age comes, though no line comes for them (a quiet device
  /// after a restart); files it did not make are left alone, however their names match.
  @Test func filesLeftByAnEarlierRunAreRotatedOnTime() async throws {
    let folder = temporaryFolder()
    let manager = FileManager.default
    let settings = #"{"path": "\#(folder)/s/${k}.jsonl", "rotate": {"maxAgeSeconds": 10}}"#
    // The earlier run: a.jsonl, and b.jsonl rotated already.
    let earlier = try FileArchiveAction(
      configuration: configuration(settings), context: context, clock: SteppingClock(),
      sweeper: ArchiveSweeper())
    #expect(await earlier.performBatch([input(object([("k", .string("a"))]), json: #"{"k":"a"}"#)]) == [nil])
    await earlier.shutdown()
    // Where the file system keeps no extended attributes nothing is marked, and nothing found.
    let probe = Glibc.open("\(folder)/s/probe", O_CREAT | O_WRONLY, 0o644)
    let marks = iotrules_mark(probe, "x", 1) == 0 || errno != ENOTSUP
    close(probe)
    unlink("\(folder)/s/probe")
    guard marks else { return }
    // b's rotated file, an operator's file of a matching name, other files.
    try manager.createDirectory(atPath: "\(folder)/s/sub", withIntermediateDirectories: true)
    for name in [
      "b.jsonl.20261204T142310.123Z", "b.jsonl.20261204T142310.123Z-0001", "mine.jsonl", "notes.txt",
      "sub/c.jsonl",
    ] {
      try Data("{}\n".utf8).write(to: URL(fileURLWithPath: "\(folder)/s/\(name)"))
    }
    let clock = SteppingClock()
    let sweeper = ArchiveSweeper()
    let action = try FileArchiveAction(
      configuration: configuration(settings), context: context, clock: clock, sweeper: sweeper)
    sweeper.scanQueue.sync { sweeper.findLeftFilesNow(of: action) }
    #expect(sweeper.state.withLock { Array($0.orphans.keys) } == ["\(folder)/s/a.jsonl"])
    // Another rule's path under the same root does not take it.
    let other = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/s/${x}.jsonl", "rotate": {"maxAgeSeconds": 1}}"#),
      context: context, clock: clock, sweeper: ArchiveSweeper())
    #expect(!other.isMarked("\(folder)/s/a.jsonl") && action.isMarked("\(folder)/s/a.jsonl"))
    clock.advance(milliseconds: 9_000)
    sweeper.sweepOrphans()
    #expect(manager.fileExists(atPath: "\(folder)/s/a.jsonl"))
    clock.advance(milliseconds: 1_000)
    sweeper.sweepOrphans()
    #expect(!manager.fileExists(atPath: "\(folder)/s/a.jsonl"))
    let names = try manager.contentsOfDirectory(atPath: "\(folder)/s")
    #expect(names.filter { $0.hasPrefix("a.jsonl.2023") }.count == 1)
    #expect(names.contains("mine.jsonl"))
    #expect(FileArchiveAction.isRotatedName("x.jsonl.20261204T142310.123Z-0001"))
    #expect(!FileArchiveAction.isRotatedName("x.jsonl.20261204T142310.123"))
  }

  /// A file is opened below the root through no link on its way, however the folders looked when
  /// they were checked: a folder swapped for a link to elsewhere in between (a process writing in
  /// the root, racing the archive) had lines written outside the root.
  @Test func aFileIsOpenedThroughNoLinkBelowTheRoot() throws {
    let folder = temporaryFolder()
    let manager = FileManager.default
    try manager.createDirectory(atPath: "\(folder)/root/real", withIntermediateDirectories: true)
    try manager.createDirectory(atPath: "\(folder)/outside", withIntermediateDirectories: true)
    try manager.createSymbolicLink(atPath: "\(folder)/root/d", withDestinationPath: "\(folder)/outside")
    let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW
    #expect(iotrules_open_beneath("\(folder)/root", "d/x.jsonl", flags, 0o644) == -1 && errno == ELOOP)
    #expect(
      iotrules_open_beneath("\(folder)/root", "../outside/x.jsonl", flags, 0o644) == -1 && errno == EXDEV)
    #expect(!manager.fileExists(atPath: "\(folder)/outside/x.jsonl"))
    let fd = iotrules_open_beneath("\(folder)/root", "real/x.jsonl", flags, 0o644)
    #expect(fd >= 0)
    close(fd)
    #expect(manager.fileExists(atPath: "\(folder)/root/real/x.jsonl"))
    // Folders are made, and rotations renamed, through no link either (mkdir(2) and rename(2) by
    // path made folders outside the root and moved a file there out).
    #expect(iotrules_mkdir_beneath("\(folder)/root", "d/sub", 0o755) == -1 && errno == ELOOP)
    #expect(!manager.fileExists(atPath: "\(folder)/outside/sub"))
    #expect(iotrules_mkdir_beneath("\(folder)/root", "real/sub", 0o755) == 0)
    try Data("v".utf8).write(to: URL(fileURLWithPath: "\(folder)/outside/v.log"))
    #expect(iotrules_rename_beneath("\(folder)/root", "d/v.log", "d/v.log.1", 1) == -1 && errno == ELOOP)
    #expect(manager.fileExists(atPath: "\(folder)/outside/v.log"))
    #expect(iotrules_rename_beneath("\(folder)/root", "real/x.jsonl", "real/x.jsonl.1", 1) == 0)
    #expect(manager.fileExists(atPath: "\(folder)/root/real/x.jsonl.1"))
  }

  /// A path calling get_secret is refused: rendered without the secret store, it was empty, and
  /// every rule's results went to one file. The error points at the call, not at the first text
  /// that spells its name.
  @Test func aPathCallingGetSecretIsRefused() throws {
    #expect {
      try FileArchiveAction(
        configuration: configuration(#"{"path": "get_secret/${topic(2)}/${get_secret('a')}x.jsonl"}"#),
        context: context)
    } throws: { error in
      let error = error as? ActionConfigurationError
      return error?.message.hasPrefix(
        "file.path: get_secret is read only in the http, kafka and republish actions' settings") == true
        && error?.position == FilePosition(line: 1, column: 36)
    }
  }

  /// A name no rendering gives is turned away in steps proportional to its length times the
  /// path's pieces: backtracking over six `${…}` took length^6 steps for a marked file renamed to a
  /// 120-byte name, and the start scan of every archive action waited for hours.
  @Test(.timeLimit(.minutes(3))) func aNameIsMatchedAgainstThePathWithoutBacktrackingForEver() throws {
    let folder = temporaryFolder()
    let wildcards = (2...7).map { "${topic(\($0))}" }.joined()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/s/\#(wildcards).jsonl"}"#), context: context,
      clock: SteppingClock(), sweeper: ArchiveSweeper())
    let pieces = action.pathPieces
    #expect(action.couldName("abcdef.jsonl", pieces: pieces))
    #expect(action.couldName("a.jsonl", pieces: pieces))
    #expect(!action.couldName("ab/cdef.jsonl", pieces: pieces))
    #expect(!action.couldName(String(repeating: "x", count: 120) + ".jsonl.bak", pieces: pieces))
  }

  /// The daemon's actions are swept by the process's sweeper, on its own, about once a second.
  @Test(.timeLimit(.minutes(3))) func theSweeperClosesIdleFilesOnItsOwn() async throws {
    let folder = temporaryFolder()
    let sweeper = ArchiveSweeper()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/v/a.jsonl", "closeIdleSeconds": 1}"#),
      context: context, sweeper: sweeper)
    #expect(await action.performBatch([numbered(1)]) == [nil])
    #expect(sweeper.state.withLock { $0.actions.count } == 1)
    for _ in 0..<50 where sweeper.state.withLock({ $0.running }) {
      try await Task.sleep(nanoseconds: 100_000_000)
    }
    #expect(action.files.withLock { $0.isEmpty })
    #expect(sweeper.state.withLock { $0.actions.isEmpty && !$0.running })
    // Opening a file again watches the action again.
    #expect(await action.performBatch([numbered(2)]) == [nil])
    #expect(sweeper.state.withLock { $0.actions.count == 1 && $0.running })
    await action.shutdown()
    #expect(try String(contentsOfFile: "\(folder)/v/a.jsonl", encoding: .utf8) == "{\"n\":1}\n{\"n\":2}\n")
  }

  /// A file renamed away (logrotate without copytruncate) is seen by the next batch, not a second
  /// later: no line of it goes into the renamed file.
  @Test func aRenamedFileIsSeenByTheNextBatch() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/r/a.jsonl", "fsync": "never"}"#), context: context,
      clock: FastClock())
    #expect(await action.performBatch([numbered(1)]) == [nil])
    try FileManager.default.moveItem(atPath: "\(folder)/r/a.jsonl", toPath: "\(folder)/r/a.jsonl-moved")
    #expect(await action.performBatch([numbered(2)]) == [nil])
    await action.shutdown()
    #expect(try String(contentsOfFile: "\(folder)/r/a.jsonl-moved", encoding: .utf8) == "{\"n\":1}\n")
    #expect(try String(contentsOfFile: "\(folder)/r/a.jsonl", encoding: .utf8) == "{\"n\":2}\n")
  }

  /// A symbolic link below the root (a folder or the file) is not followed: the line takes the
  /// error path, and nothing is written where the link points.
  @Test func linksBelowTheRootAreNotFollowed() async throws {
    let folder = temporaryFolder()
    try FileManager.default.createDirectory(atPath: "\(folder)/elsewhere", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: "\(folder)/arch/d2", withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(
      atPath: "\(folder)/arch/d1", withDestinationPath: "../elsewhere")
    try FileManager.default.createSymbolicLink(
      atPath: "\(folder)/arch/d2/log.jsonl", withDestinationPath: "../../elsewhere/file.jsonl")
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/arch/${topic(2)}/log.jsonl"}"#), context: context)
    let results = await action.performBatch([
      input(object([("n", .int(1))]), json: #"{"n":1}"#, topic: "s/d1"),
      input(object([("n", .int(2))]), json: #"{"n":2}"#, topic: "s/d2"),
      input(object([("n", .int(3))]), json: #"{"n":3}"#, topic: "s/d3"),
    ])
    await action.shutdown()
    #expect(results[0]?.kind == .permanent && results[0]?.message.contains("is a symbolic link") == true)
    #expect(results[1]?.kind == .permanent, "\(String(describing: results[1]))")
    #expect(results[2] == nil)
    #expect(try FileManager.default.contentsOfDirectory(atPath: "\(folder)/elsewhere").isEmpty)
    #expect(try String(contentsOfFile: "\(folder)/arch/d3/log.jsonl", encoding: .utf8) == "{\"n\":3}\n")
  }

  /// Rounds of one action (an error action that several lanes call) go one at a time: a write
  /// never lands while another round's fsync of the same file runs, which could take its error.
  @Test func roundsOfOneActionDoNotOverlap() async throws {
    let folder = temporaryFolder()
    let inSync = Mutex((now: 0, most: 0, writesDuringSync: 0))
    let watching = FileOperations(
      write: { descriptor, bytes, count in
        inSync.withLock { if $0.now > 0 { $0.writesDuringSync += 1 } }
        return Glibc.write(descriptor, bytes, count)
      },
      sync: { descriptor in
        inSync.withLock {
          $0.now += 1
          $0.most = max($0.most, $0.now)
        }
        usleep(2_000)
        defer { inSync.withLock { $0.now -= 1 } }
        return fsync(descriptor)
      })
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/errors.jsonl"}"#), context: context)
    action.operations.withLock { $0 = watching }
    let results = await withTaskGroup(of: [ActionError?].self) { group in
      for n in 0..<16 {
        group.addTask { await action.performBatch([input(object([("n", .int(n))]), json: #"{"n":\#(n)}"#)]) }
      }
      return await group.reduce(into: []) { $0 += $1 }
    }
    await action.shutdown()
    #expect(results.count == 16 && results.allSatisfy { $0 == nil })
    #expect(inSync.withLock { $0.most } == 1)
    #expect(inSync.withLock { $0.writesDuringSync } == 0)
    let lines = try String(contentsOfFile: "\(folder)/errors.jsonl", encoding: .utf8).split(separator: "\n")
    #expect(Set(lines).count == 16)
  }

  @Test func aWriteThatFailsPartwayLeavesNoTornLine() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/t/a.jsonl"}"#), context: context)
    #expect(await action.performBatch([numbered(1)])[0] == nil)
    action.operations.withLock { $0 = Self.tornWrites() }
    let line = input(object([("n", .int(2))]), json: #"{"n":2,"text":"a line long enough to be cut"}"#)
    let failed = await action.performBatch([line])[0]
    #expect(failed?.kind == .transient && failed?.message.contains("No space left") == true)
    #expect(try String(contentsOfFile: "\(folder)/t/a.jsonl", encoding: .utf8) == "{\"n\":1}\n")
    action.operations.withLock { $0 = .system }
    #expect(await action.performBatch([line])[0] == nil)
    await action.shutdown()
    #expect(
      try String(contentsOfFile: "\(folder)/t/a.jsonl", encoding: .utf8)
        == "{\"n\":1}\n{\"n\":2,\"text\":\"a line long enough to be cut\"}\n")
  }

  /// A disk with room for some lines of a batch but not all: the lines that fit are written and
  /// the one that does not fails alone (the batch's one write failed, each attempt, and took every
  /// line to the error path while most of them would have fit).
  @Test func aNearlyFullDiskTakesTheLinesThatFit() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/t/a.jsonl"}"#), context: context)
    #expect(await action.performBatch([numbered(1)])[0] == nil)
    // Room for 60 more bytes: a write that would pass them fails whole, as a full disk's does here.
    let room = Mutex(60)
    action.operations.withLock {
      $0 = FileOperations(
        write: { descriptor, bytes, count in
          guard
            room.withLock({ left in
              defer { if left >= count { left -= count } }
              return left >= count
            })
          else {
            errno = ENOSPC
            return -1
          }
          return Glibc.write(descriptor, bytes, count)
        }, sync: FileOperations.system.sync)
    }
    let big = input(
      object([("n", .int(3))]), json: #"{"n":3,"text":"\#(String(repeating: "x", count: 200))"}"#)
    let results = await action.performBatch([numbered(2), big, numbered(4), numbered(5)])
    #expect(results.map { $0 == nil } == [true, false, true, true], "\(results)")
    #expect(results[1]?.message.contains("No space left") == true)
    await action.shutdown()
    #expect(
      try String(contentsOfFile: "\(folder)/t/a.jsonl", encoding: .utf8)
        == "{\"n\":1}\n{\"n\":2}\n{\"n\":4}\n{\"n\":5}\n")
  }

  @Test func theDeadLetterFileLeavesNoTornRecord() async throws {
    let path = temporaryFolder() + "/dead.jsonl"
    let sink = DeadLetterFile(path: path)
    let record = ErrorRecord(
      ruleName: "r", topic: "t", traceId: "trace", clientId: "c", base64OriginalPayload: "AQID", failures: [],
      timestamp: 0, origin: "test")
    try await sink.write(record)
    sink.operations.withLock { $0 = Self.tornWrites() }
    await #expect(throws: ActionError.self) { try await sink.write(record) }
    sink.operations.withLock { $0 = .system }
    try await sink.write(record)
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(
      separator: "\n", omittingEmptySubsequences: false)
    #expect(lines.count == 3 && lines[2].isEmpty)
    #expect(lines[0] == lines[1])
    // Made readable by its owner and group only, whatever the umask lets through beyond that.
    // (The umask read from /proc: setting it to read it would race the tests running beside.)
    let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
    let mask = try #require(
      status.split(separator: "\n").first { $0.hasPrefix("Umask:") }.flatMap {
        mode_t($0.dropFirst("Umask:".count).trimmingCharacters(in: .whitespaces), radix: 8)
      })
    var info = stat()
    #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o640 & ~mask)
  }

  /// A file a killed process left ending in part of a line (a kill -9 in the middle of a write):
  /// the next line, of the archive or of the dead-letter file, starts on a line of its own; the
  /// part is kept as it was. A file that ends its lines, or is empty, is written as it is.
  @Test func aLineCutShortByAKillIsEndedBeforeTheNextOne() async throws {
    let folder = temporaryFolder()
    for (name, text) in [("cut", "{\"a\":1}\n{\"a\":"), ("whole", "{\"a\":1}\n"), ("empty", "")] {
      try text.write(toFile: "\(folder)/\(name).jsonl", atomically: false, encoding: .utf8)
    }
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/${topic()}.jsonl", "fsync": "always"}"#),
      context: context)
    for name in ["cut", "whole", "empty"] {
      let line = input(object([("b", .int(2))]), json: #"{"b":2}"#, topic: name)
      #expect(await action.performBatch([line]) == [nil])
    }
    await action.shutdown()
    func text(_ name: String) throws -> String {
      try String(contentsOfFile: "\(folder)/\(name)", encoding: .utf8)
    }
    #expect(try text("cut.jsonl") == "{\"a\":1}\n{\"a\":\n{\"b\":2}\n")
    // The warning's offset of the part: just past the line break before it, or the file's start.
    for (content, start) in [
      ("{\"a\":1}\n{\"a\":", 8), ("{\"a\":", 0), (String(repeating: "x\n", count: 70_000) + "y", 140_000),
    ] {
      let path = "\(folder)/part.jsonl"
      try content.write(toFile: path, atomically: false, encoding: .utf8)
      let fd = Glibc.open(path, O_RDONLY)
      #expect(FileSystem.lineStart(fd, before: content.utf8.count) == start)
      Glibc.close(fd)
    }
    #expect(try text("whole.jsonl") == "{\"a\":1}\n{\"b\":2}\n")
    #expect(try text("empty.jsonl") == "{\"b\":2}\n")

    let record = ErrorRecord(
      ruleName: "r", topic: "t", traceId: "trace", clientId: "c", base64OriginalPayload: "AQID", failures: [],
      timestamp: 0, origin: "test")
    for prepared in [true, false] {
      let path = "\(folder)/dead-\(prepared).jsonl"
      try "{\"ruleName\":".write(toFile: path, atomically: false, encoding: .utf8)
      let sink = DeadLetterFile(path: path)
      if prepared { try sink.prepare() }
      try await sink.write(record)
      let lines = try text("dead-\(prepared).jsonl").split(separator: "\n")
      #expect(lines.count == 2 && lines[0] == "{\"ruleName\":" && lines[1] == Substring(record.json))
    }
  }

  /// A record whose fsync failed is cut back out of the file: the retry writes it again, and no
  /// second copy is left to reach the disk.
  @Test func theDeadLetterFileKeepsNoRecordWhoseSyncFailed() async throws {
    let path = temporaryFolder() + "/dead.jsonl"
    let sink = DeadLetterFile(path: path)
    let record = ErrorRecord(
      ruleName: "r", topic: "t", traceId: "trace", clientId: "c", base64OriginalPayload: "AQID", failures: [],
      timestamp: 0, origin: "test")
    try await sink.write(record)
    sink.operations.withLock {
      $0 = FileOperations(
        write: FileOperations.system.write,
        sync: { _ in
          errno = EIO
          return -1
        })
    }
    await #expect(throws: ActionError.self) { try await sink.write(record) }
    sink.operations.withLock { $0 = .system }
    try await sink.write(record)
    #expect(try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count == 2)
  }

  /// Another daemon sharing the dead-letter file, killed while appending, leaves the part of a
  /// record: the next record here starts its own line (it was glued to the part, unreadable).
  @Test func theDeadLetterFileEndsACutLineAnotherWriterLeft() async throws {
    let path = temporaryFolder() + "/dead.jsonl"
    let sink = DeadLetterFile(path: path)
    try await sink.write(Self.deadRecord("a"))
    let other = open(path, O_WRONLY | O_APPEND)
    #expect(other >= 0)
    #expect(write(other, #"{"ruleName":"cu"#, 15) == 15)
    close(other)
    try await sink.write(Self.deadRecord("b"))
    #expect(try Self.deadRuleNames(path) == ["a", "?", "b"])
  }

  static func deadRecord(_ name: String, payload: String = "AQID") -> ErrorRecord {
    ErrorRecord(
      ruleName: name, topic: "t", traceId: "trace", clientId: "c", base64OriginalPayload: payload,
      failures: [],
      timestamp: 0, origin: "test")
  }

  /// The rule names of the records in a dead-letter file, in its order.
  static func deadRuleNames(_ path: String) throws -> [String] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
      guard case .object(let object)? = try? JSONReader.parse(Array(line.utf8)),
        case .string(let name)? = object["ruleName"]
      else { return "?" }
      return name
    }
  }

  /// Records written together take one fsync, in their order; records written one by one while an
  /// fsync runs share the next one.
  @Test func deadLetterRecordsWrittenTogetherShareAnFsync() async throws {
    let path = temporaryFolder() + "/dead.jsonl"
    let sink = DeadLetterFile(path: path)
    try await sink.write(Self.deadRecord("first"))
    let syncs = Mutex(0)
    sink.operations.withLock {
      $0 = FileOperations(
        write: FileOperations.system.write,
        sync: { descriptor in
          let call = syncs.withLock { count in
            defer { count += 1 }
            return count
          }
          if call == 1 {
            // The second fsync lasts until 20 more records wait (at most 10 s).
            for _ in 0..<1_000 where sink.waiting.withLock({ $0.requests.count }) < 20 { usleep(10_000) }
          }
          return fsync(descriptor)
        })
    }
    let names = (0..<50).map { "batch\($0)" }
    let outcomes = await sink.write(names.map { Self.deadRecord($0) })
    #expect(outcomes.allSatisfy { $0 == nil })
    #expect(syncs.withLock { $0 } == 1)
    // One record, then 20 more while its fsync runs: two fsyncs more.
    let first = Task { try await sink.write(Self.deadRecord("lone")) }
    // Its fsync must have begun before the 20 are written (up to 10 s: the full suite loads both
    // cores, and 1 s was once not enough). Waiting without holding a thread of the cooperative pool,
    // which the write's task may need (a usleep loop once starved it for the whole 10 s).
    for _ in 0..<10_000 where syncs.withLock({ $0 }) < 2 { try await Task.sleep(nanoseconds: 1_000_000) }
    #expect(syncs.withLock { $0 } == 2)
    try await withThrowingTaskGroup(of: Void.self) { group in
      for index in 0..<20 { group.addTask { try await sink.write(Self.deadRecord("later\(index)")) } }
      try await group.waitForAll()
    }
    try await first.value
    #expect(syncs.withLock { $0 } == 3)
    let written = try Self.deadRuleNames(path)
    #expect(Array(written.prefix(52)) == ["first"] + names + ["lone"])
    #expect(Set(written.dropFirst(52)) == Set((0..<20).map { "later\($0)" }))
  }

  /// When a group's write or fsync fails, each of its records is written alone: one too large for
  /// the space left fails by itself, the others are written once, in their order.
  @Test func aDeadLetterGroupThatFailsIsWrittenRecordByRecord() async throws {
    let path = temporaryFolder() + "/dead.jsonl"
    let sink = DeadLetterFile(path: path)
    try await sink.write(Self.deadRecord("first"))
    sink.operations.withLock {
      $0 = FileOperations(
        write: { descriptor, bytes, count in
          if count > 4_000 {
            errno = ENOSPC
            return -1
          }
          return Glibc.write(descriptor, bytes, count)
        }, sync: FileOperations.system.sync)
    }
    let big = String(repeating: "A", count: 8_000)
    let outcomes = await sink.write([
      Self.deadRecord("a"), Self.deadRecord("big", payload: big), Self.deadRecord("b"),
    ])
    // The records after the one that fails are not tried: written, they would come before it.
    #expect(outcomes[0] == nil && outcomes[1] != nil && outcomes[2] != nil)
    #expect("\(outcomes[1].map { "\($0)" } ?? "")".contains("No space left"))
    #expect(try Self.deadRuleNames(path) == ["first", "a"])

    sink.operations.withLock { $0 = Self.failingSyncs { $0 == 0 } }
    let retried = await sink.write([Self.deadRecord("c"), Self.deadRecord("d")])
    #expect(retried.allSatisfy { $0 == nil })
    #expect(try Self.deadRuleNames(path) == ["first", "a", "c", "d"])
  }

  /// A new pipe's read and write ends.
  static func pipeEnds() throws -> [Int32] {
    var ends: [Int32] = [0, 0]
    guard pipe(&ends) == 0 else { throw POSIXError(.EMFILE) }
    return ends
  }

  /// A pipe whose reader goes away in the middle of a group: the records it read count as written
  /// (they cannot be taken back, and a source would deliver their messages again), the rest fail.
  @Test func aPipeThatBreaksInAGroupKeepsTheRecordsItRead() async throws {
    let ends = try Self.pipeEnds()
    defer { ends.forEach { close($0) } }
    let sink = DeadLetterFile(path: "/proc/self/fd/\(ends[1])")
    let writes = Counter()
    sink.operations.withLock {
      $0 = FileOperations(
        write: { descriptor, bytes, count in
          if writes.next() >= 2 {
            errno = EPIPE
            return -1
          }
          return Glibc.write(descriptor, bytes, count)
        }, sync: FileOperations.system.sync)
    }
    let outcomes = await sink.write((0..<4).map { Self.deadRecord("r\($0)") })
    #expect(outcomes[0] == nil && outcomes[1] == nil)
    #expect(outcomes[2] != nil && outcomes[3] != nil)
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = read(ends[0], &buffer, buffer.count)
    let text = String(decoding: buffer[..<max(count, 0)], as: UTF8.self)
    #expect(text.split(separator: "\n").count == 2 && text.contains(#""ruleName":"r1""#))
  }

  /// logrotate without copytruncate (rename), or a deleted file: the next record goes to a new file
  /// at the path, not into the one moved away or unlinked.
  @Test func theDeadLetterFileFollowsItsPathWhenMovedOrDeleted() async throws {
    let path = temporaryFolder() + "/dead.jsonl"
    let sink = DeadLetterFile(path: path)
    func record(_ name: String) -> ErrorRecord {
      ErrorRecord(
        ruleName: name, topic: "t", traceId: "trace", clientId: "c", base64OriginalPayload: "AQID",
        failures: [],
        timestamp: 0, origin: "test")
    }
    try await sink.write(record("first"))
    try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
    try await sink.write(record("second"))
    try FileManager.default.removeItem(atPath: path)
    try await sink.write(record("third"))
    #expect(try String(contentsOfFile: path + ".1", encoding: .utf8).contains(#""ruleName":"first""#))
    let current = try String(contentsOfFile: path, encoding: .utf8)
    #expect(current.contains(#""ruleName":"third""#) && !current.contains("second"))
    #expect(current.split(separator: "\n").count == 1)
  }

  /// A FIFO or a pipe as the dead-letter file: no reader is said at start (its open blocked with
  /// no word), and a record written to a pipe counts as written (fsync's EINVAL failed it, and it
  /// was written again for ever).
  @Test func theDeadLetterFileMayBeAPipe() async throws {
    let fifo = temporaryFolder() + "/dead.fifo"
    #expect(mkfifo(fifo, 0o600) == 0)
    #expect {
      try DeadLetterFile(path: fifo).prepare()
    } throws: { error in
      "\(error)".contains("cannot open dead-letter file \(fifo)")
    }
    let ends = try Self.pipeEnds()
    defer { ends.forEach { close($0) } }
    let sink = DeadLetterFile(path: "/proc/self/fd/\(ends[1])")
    try sink.prepare()
    try await sink.write(
      ErrorRecord(
        ruleName: "piped", topic: "t", traceId: "trace", clientId: "c", base64OriginalPayload: "AQID",
        failures: [], timestamp: 0, origin: "test"))
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = read(ends[0], &buffer, buffer.count)
    #expect(
      count > 0 && String(decoding: buffer[..<max(count, 0)], as: UTF8.self).contains(#""ruleName":"piped""#))
  }

  @Test func aFailedFsyncWhenAFileIsClosedForRotationFailsItsLines() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/r/a.jsonl", "rotate": {"maxBytes": 12}}"#),
      context: context)
    // The first fsync is the one at closing the file for rotation.
    action.operations.withLock { $0 = Self.failingSyncs { $0 == 0 } }
    let results = await action.performBatch([
      numbered(1), numbered(2),
    ])
    #expect(
      results[0]?.message.contains("fsync") == true
        && results[0]?.message.contains("Input/output error") == true)
    #expect(results[1] == nil)
    await action.shutdown()
    #expect(try String(contentsOfFile: "\(folder)/r/a.jsonl", encoding: .utf8) == "{\"n\":2}\n")
  }

  /// The order of use finds the file a scan of every open file finds, through uses, closes (a
  /// sweep, another reason), reopenings and evictions in a random order.
  @Test func theUseOrderFindsWhatTheScanFinds() {
    // A linear congruential generator: the same steps on every run.
    var state: UInt64 = 61
    func next() -> UInt64 {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return state >> 33
    }
    var files: [String: FileArchiveAction.OpenFile] = [:]
    var order = FileArchiveAction.UseOrder()
    let identity = FileIdentity(device: 0, inode: 0)
    var found = 0
    for use in 1...20_000 {
      let path = "f\(next() % 300)"
      switch next() % 10 {
      case 0:
        files[path] = nil
      case 1, 2:
        let besides = "f\(next() % 300)"
        let expected = FileArchiveAction.leastRecentlyUsed(in: files, besides: besides)
        let victim = order.leastRecentlyUsed(in: files, besides: besides)
        #expect(victim == expected, "step \(use)")
        if let victim { files[victim] = nil }
        found += victim == nil ? 0 : 1
      default:
        if files[path] == nil {
          files[path] = FileArchiveAction.OpenFile(
            descriptor: -1, size: 0, openedAtMs: 0, lastWriteMs: 0, identity: identity)
        }
        files[path]!.lastUse = use
        order.used(path, at: use, of: files)
      }
    }
    #expect(found > 1_000)
    #expect(order.entries.count < 4 * files.count + 2_048)
    // Without a file to close (under the limit), the uses of a hundred files stay a bounded
    // number of entries; below `minimumFiles` files none are kept.
    var kept = FileArchiveAction.UseOrder()
    let file = FileArchiveAction.OpenFile(
      descriptor: -1, size: 0, openedAtMs: 0, lastWriteMs: 0, identity: identity)
    files = Dictionary(uniqueKeysWithValues: (0..<100).map { ("g\($0)", file) })
    for use in 1...100_000 {
      let path = "g\(use % 100)"
      files[path]!.lastUse = use
      kept.used(path, at: use, of: files)
    }
    #expect(kept.entries.count <= 4 * 100 + 1_025)
    #expect(kept.leastRecentlyUsed(in: files, besides: "x") == "g1")
    files = ["a": file]
    kept.used("a", at: 100_001, of: files)
    #expect(kept.entries.isEmpty)
  }

  /// At the open-files limit, the least recently used file is closed, not the first opened: a file
  /// written in every batch stays open however many others come and go.
  @Test func theLeastRecentlyUsedFileIsClosedAtTheLimit() async throws {
    let folder = temporaryFolder()
    let limit = 8
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/m/${k}.jsonl", "fsync": "never"}"#),
      context: context, budget: FileArchiveAction.OpenFileBudget(limit: limit))
    func line(_ name: String) -> ActionInput {
      input(object([("k", .string(name))]), json: #"{"k":"\#(name)"}"#)
    }
    #expect((64...8_192).contains(FileArchiveAction.maxOpenFiles))
    let first = await action.performBatch((0..<limit).map { line("f\($0)") })
    #expect(first.allSatisfy { $0 == nil })
    // f0 is used again, then a new file needs room: f1, the least recently used, is closed.
    let second = await action.performBatch([line("f0"), line("new")])
    #expect(second.allSatisfy { $0 == nil })
    let open = action.files.withLock { Set($0.keys.map { ($0 as NSString).lastPathComponent }) }
    #expect(open.count == limit)
    #expect(open.contains("f0.jsonl") && open.contains("new.jsonl") && !open.contains("f1.jsonl"))
    await action.shutdown()
    #expect(
      try String(contentsOfFile: "\(folder)/m/f0.jsonl", encoding: .utf8)
        == "{\"k\":\"f0\"}\n{\"k\":\"f0\"}\n")
    #expect(try String(contentsOfFile: "\(folder)/m/f1.jsonl", encoding: .utf8) == "{\"k\":\"f1\"}\n")
    // The budget is the process's, all actions together: a second action at a spent budget closes
    // one of its own files before opening another, and every close gives its file back.
    let budget = FileArchiveAction.OpenFileBudget(limit: 3)
    let one = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/p/${k}.jsonl", "fsync": "never"}"#),
      context: context,
      budget: budget)
    let two = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/q/${k}.jsonl", "fsync": "never"}"#),
      context: context,
      budget: budget)
    #expect(await one.performBatch([line("a"), line("b")]).allSatisfy { $0 == nil })
    #expect(await two.performBatch([line("c"), line("d"), line("e")]).allSatisfy { $0 == nil })
    #expect(one.files.withLock { $0.count } == 2 && two.files.withLock { $0.count } == 1)
    #expect(budget.open.load(ordering: .relaxed) == 3)
    await one.shutdown()
    await two.shutdown()
    #expect(budget.open.load(ordering: .relaxed) == 0)
  }

  @Test func aFailedFsyncWhenAFileIsClosedForTheOpenFilesLimitFailsItsLines() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/m/${k}.jsonl"}"#), context: context,
      budget: FileArchiveAction.OpenFileBudget(limit: 16))
    action.operations.withLock { $0 = Self.failingSyncs { _ in true } }
    let count = action.budget.limit + 1
    let results = await action.performBatch(
      (0..<count).map { index in
        input(object([("k", .string("f\(index)"))]), json: #"{"k":"f\#(index)"}"#)
      })
    // The first file was closed (and its fsync failed) to open the last one.
    #expect(
      results.allSatisfy { $0?.message.contains("Input/output error") == true },
      "\(results.map { $0?.message })")
    await action.shutdown()
  }

  // MARK: - The daemon's own files, descriptors, cut lines, long names, the path's own text

  /// No rendered path names the daemon's own files: the files of its rules folder (a rule JSON
  /// payload on `devices/rules/evil` rendered `rules/evil.json`, which the daemon loaded), a rule
  /// file named alone and its tests, the dead-letter file, anything in the secrets folder, a SQLite
  /// database or the `-wal`, `-shm` and `-journal` beside one. Each is refused, permanently, naming
  /// the path and why, before a folder is made for it; the protected paths are resolved (a `..`, a
  /// link to the archive's root), and what is not the daemon's own is written as before.
  @Test func theDaemonsOwnFilesAreNeverWritten() async throws {
    let folder = URL(fileURLWithPath: temporaryFolder()).resolvingSymlinksInPath().path
    let manager = FileManager.default
    for name in ["rules", "one", "secrets", "data", "elsewhere"] {
      try manager.createDirectory(atPath: "\(folder)/\(name)", withIntermediateDirectories: true)
    }
    try Data("{}".utf8).write(to: URL(fileURLWithPath: "\(folder)/rules/r.json"))
    try Data("{}".utf8).write(to: URL(fileURLWithPath: "\(folder)/one/r.json"))
    try Data("{\"ruleName\":\"r\"}\n".utf8).write(to: URL(fileURLWithPath: "\(folder)/dead.jsonl"))
    try await DatabaseQueue(path: "\(folder)/data/iot.db").write { db in
      try db.execute(sql: "CREATE TABLE t (n INTEGER)")
    }
    let database = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/data/iot.db"))
    // The archive's root is a link to the folder: the refusal goes by where a path leads.
    #expect(symlink(folder, "\(folder)/elsewhere/root") == 0)
    let protected = FileArchiveAction.ProtectedPaths()
    protected.protectDaemonFiles(
      rulePaths: ["\(folder)/elsewhere/../rules", "\(folder)/one/r.json"], deadLetter: "\(folder)/dead.jsonl",
      secretsFolder: "\(folder)/secrets")
    let action = try FileArchiveAction(
      configuration: configuration(#"{"root": "\#(folder)/elsewhere/root", "path": "${p}"}"#),
      context: context, protectedPaths: protected)
    let refused = [
      (
        "rules/evil.json",
        "is in the rules folder '\(folder)/elsewhere/../rules', whose files the daemon loads"
      ),
      ("rules/r.json", "is in the rules folder"),
      ("one/r.json", "is the rule file '\(folder)/one/r.json' the daemon loads (--rules)"),
      ("one/r.test.json", "is the tests of the rule file '\(folder)/one/r.json'"),
      ("dead.jsonl", "is the dead-letter file '\(folder)/dead.jsonl' (--dead-letter)"),
      ("secrets/token", "is in the secrets folder '\(folder)/secrets' (--secrets-dir)"),
      ("secrets/deeper/token", "is in the secrets folder"),
      ("data/iot.db", "is a SQLite database"),
      ("data/iot.db-wal", "is the '-wal' file of the SQLite database '\(folder)/elsewhere/root/data/iot.db'"),
      ("data/iot.db-journal", "is the '-journal' file of the SQLite database"),
      // Any daemon's state files, by name (another daemon's spool beside this one's ran forged lines).
      ("state/iotrules-spool-B.state", "is an iotrules state file ('iotrules-spool-B.state'"),
      ("iotrules-spool-B.state.lock", "is an iotrules state file ('iotrules-spool-B.state.lock'"),
      ("x/iotrules-subscriptions-B.state", "is an iotrules state file ('iotrules-subscriptions-B.state'"),
    ]
    let allowed = [
      "rules/team/notes.jsonl", "rules/archive.jsonl", "one/other.json", "data/other.db-wal", "ok.jsonl",
      "iotrules-spool-B.jsonl",
    ]
    let inputs = (refused.map(\.0) + allowed).map { path in
      input(object([("p", .string(path))]), json: #"{"p":"\#(path)"}"#)
    }
    let results = await action.performBatch(inputs)
    for ((path, why), result) in zip(refused, results) {
      #expect(result?.kind == .permanent, "\(path)")
      #expect(
        result?.message.hasPrefix("rendered path '\(folder)/elsewhere/root/\(path)' \(why)") == true,
        "\(String(describing: result))")
      #expect(
        result?.message.contains("the archive never writes the daemon's own files") == true
          || path.hasPrefix("data/"))
    }
    #expect(results.suffix(allowed.count).allSatisfy { $0 == nil }, "\(results)")
    await action.shutdown()
    #expect(
      try manager.contentsOfDirectory(atPath: "\(folder)/rules").sorted() == [
        "archive.jsonl", "r.json", "team",
      ])
    #expect(try manager.contentsOfDirectory(atPath: "\(folder)/one").sorted() == ["other.json", "r.json"])
    #expect(try manager.contentsOfDirectory(atPath: "\(folder)/secrets").isEmpty)
    #expect(try String(contentsOfFile: "\(folder)/dead.jsonl", encoding: .utf8) == "{\"ruleName\":\"r\"}\n")
    #expect(try Data(contentsOf: URL(fileURLWithPath: "\(folder)/data/iot.db")) == database)
    #expect(!manager.fileExists(atPath: "\(folder)/data/iot.db-wal"))
    #expect(!manager.fileExists(atPath: "\(folder)/data/iot.db-journal"))
  }

  /// A hard link planted below the archive root to one of the daemon's own files (a rule file, the
  /// dead-letter file, a secret) is refused as that file: its lines went into the rule file, as a
  /// symbolic link's no longer can. A file with other names that is nobody's is written as before.
  @Test func aHardLinkToTheDaemonsOwnFilesIsRefused() async throws {
    let folder = URL(fileURLWithPath: temporaryFolder()).resolvingSymlinksInPath().path
    let manager = FileManager.default
    for name in ["rules", "secrets/deep", "arch", "mine"] {
      try manager.createDirectory(atPath: "\(folder)/\(name)", withIntermediateDirectories: true)
    }
    let originals = [
      ("rules/r.json", "{}"), ("dead.jsonl", "{\"ruleName\":\"r\"}\n"), ("secrets/deep/token", "s3cret"),
      ("mine/notes.jsonl", ""),
    ]
    for (path, text) in originals {
      try Data(text.utf8).write(to: URL(fileURLWithPath: "\(folder)/\(path)"))
    }
    for (link, target) in [
      ("innocent.jsonl", "rules/r.json"), ("d.jsonl", "dead.jsonl"), ("t.jsonl", "secrets/deep/token"),
      ("n.jsonl", "mine/notes.jsonl"),
    ] {
      #expect(Glibc.link("\(folder)/\(target)", "\(folder)/arch/\(link)") == 0)
    }
    let protected = FileArchiveAction.ProtectedPaths()
    protected.protectDaemonFiles(
      rulePaths: ["\(folder)/rules"], deadLetter: "\(folder)/dead.jsonl", secretsFolder: "\(folder)/secrets")
    let action = try FileArchiveAction(
      configuration: configuration(#"{"root": "\#(folder)/arch", "path": "${p}"}"#), context: context,
      protectedPaths: protected)
    let names = ["innocent.jsonl", "d.jsonl", "t.jsonl", "n.jsonl"]
    let results = await action.performBatch(
      names.map { input(object([("p", .string($0))]), json: #"{"p":"\#($0)"}"#) })
    await action.shutdown()
    // The linked file named (`a hard link to in the rules folder ...` named none).
    for (index, why) in [
      "'r.json' in the rules folder", "the dead-letter file", "'deep/token' in the secrets folder",
    ]
    .enumerated() {
      let message = results[index]?.message ?? ""
      #expect(
        message.hasPrefix("rendered path '\(folder)/arch/\(names[index])' is a hard link to ")
          && message.contains(why), "\(message)")
    }
    #expect(results[3] == nil, "\(results)")
    for (path, text) in originals.prefix(3) {
      #expect(try String(contentsOfFile: "\(folder)/\(path)", encoding: .utf8) == text, "\(path)")
    }
    #expect(
      try String(contentsOfFile: "\(folder)/mine/notes.jsonl", encoding: .utf8) == #"{"p":"n.jsonl"}"# + "\n")
  }

  /// `check` and the daemon's load warn when an archive's root holds the folder of the rule being
  /// loaded (the working folder, for a path that begins with a template): a value could name a rule
  /// file there. A root of the archive's own, or a path without templates, is not warned about.
  @Test func anArchiveRootHoldingTheRulesFolderIsWarnedAbout() throws {
    let folder = temporaryFolder()
    func warnings(_ settings: String, ruleFile: String) throws -> [String] {
      let text = #"{"sql": "SELECT * FROM 'devices/#'", "actions": [{"file": \#(settings)}]}"#
      let rule = try RuleFile.load(file: ruleFile, bytes: Array(text.utf8), builder: ActionFactory.local)
      return rule.warnings.map { "\($0.position.line):\($0.position.column) \($0.message)" }
    }
    let held = try warnings(#"{"path": "${topic(2)}/${topic(3)}.json"}"#, ruleFile: "rules/r.json")
    #expect(
      held == [
        "1:68 rule 'r': the archive root of the file path '${topic(2)}/${topic(3)}.json' is the working folder, which "
          + "holds the rules folder 'rules': a template value could name a rule file there (`run` refuses to write "
          + "the daemon's own files); put a folder of the archive's own before the first ${...} or give 'root'"
      ], "\(held)")
    let explicit = try warnings(
      #"{"root": "\#(folder)", "path": "${topic(2)}.json"}"#, ruleFile: "\(folder)/x/../team/r.yaml")
    #expect(
      explicit.count == 1 && explicit[0].contains("is '\(folder)', which holds the rules folder"),
      "\(explicit)")
    #expect(try warnings(#"{"path": "archive/${topic(2)}.json"}"#, ruleFile: "rules/r.json").isEmpty)
    #expect(try warnings(#"{"path": "out.jsonl"}"#, ruleFile: "r.json").isEmpty)
    // An ending no rule or test file has, after the last template, names none: no warning (under
    // --warnings-as-errors it failed CI on a safe rule). One that may become `.json` still warns.
    #expect(try warnings(#"{"path": "${topic(2)}/${topic(3)}.jsonl"}"#, ruleFile: "rules/r.json").isEmpty)
    #expect(try warnings(#"{"path": "${topic(2)}.csv"}"#, ruleFile: "rules/r.json").isEmpty)
    #expect(try warnings(#"{"path": "${topic(2)}/${topic(3)}"}"#, ruleFile: "rules/r.json").count == 1)
    #expect(try warnings(#"{"path": "${topic(2)}/x.${topic(3)}on"}"#, ruleFile: "rules/r.json").count == 1)
    #expect(try warnings(#"{"path": "${topic(2)}/${topic(3)}.yml"}"#, ruleFile: "rules/r.json").count == 1)
    // The path's text before its first template leads elsewhere than the rules folder: no
    // warning (it gave one, and its advice was what the path did already).
    for (path, warns) in [
      ("out/${topic(2)}", false), ("data-${topic(2)}", false), ("rules/sub/${topic(2)}", false),
      ("rules/${topic(2)}", true), ("r${topic(2)}", true), ("${topic(2)}", true),
    ] {
      let said = try warnings(#"{"root": ".", "path": "\#(path)"}"#, ruleFile: "rules/r.json")
      #expect(said.count == (warns ? 1 : 0), "\(path): \(said)")
    }
    #expect(try warnings(#"{"root": "rules", "path": "sub/${topic(2)}"}"#, ruleFile: "rules/r.json").isEmpty)
    #expect(try warnings(#"{"root": "rules", "path": "${topic(2)}"}"#, ruleFile: "rules/r.json").count == 1)
  }

  /// The fsyncs of a batch (`fsync` `batch`) use the files' own descriptors: the archive holds no
  /// more files open than its budget, also while they run (a `dup` of each file a batch wrote
  /// doubled what it held: 3,854 descriptors of a limit of 4,096, and at 1,024 the daemon could no
  /// longer read its rules).
  @Test func batchFsyncsHoldNoMoreDescriptorsThanTheBudget() async throws {
    let folder = temporaryFolder()
    let real = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
    let most = Mutex(0)
    let counting = FileOperations(
      write: FileOperations.system.write,
      sync: { descriptor in
        // The archive's files open in the process as the fsync starts.
        var count = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
          var target = [CChar](repeating: 0, count: 4096)
          let length = readlink("/proc/self/fd/\(name)", &target, target.count - 1)
          let path = String(decoding: target.prefix(max(0, length)).map(UInt8.init), as: UTF8.self)
          if path.hasPrefix(real + "/m/") && path.hasSuffix(".jsonl") { count += 1 }
        }
        most.withLock { $0 = max($0, count) }
        return fsync(descriptor)
      })
    let action = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/m/${k}.jsonl"}"#), context: context,
      budget: FileArchiveAction.OpenFileBudget(limit: 4))
    action.operations.withLock { $0 = counting }
    for round in 0..<3 {
      let inputs = (0..<12).map { index in
        input(object([("k", .string("f\(index % 6)"))]), json: #"{"k":"f\#(index % 6)","r":\#(round)}"#)
      }
      #expect(await action.performBatch(inputs).allSatisfy { $0 == nil })
    }
    await action.shutdown()
    #expect(most.withLock { $0 } == 4)
    for file in 0..<6 {
      let text = try String(contentsOfFile: "\(folder)/m/f\(file).jsonl", encoding: .utf8)
      #expect(text.split(separator: "\n").count == 6)
    }
  }

  /// A file an earlier run left ending in part of a line (a kill -9), which no line of this run
  /// reaches (yesterday's file): when its age comes it is rotated with that line ended, as a line
  /// of this run would have ended it, not closed for good without its line break.
  @Test func aCutLineOfAFileLeftFromBeforeIsEndedBeforeItIsRotated() async throws {
    let folder = temporaryFolder()
    let settings = #"{"path": "\#(folder)/s/${k}.jsonl", "rotate": {"maxAgeSeconds": 10}}"#
    let earlier = try FileArchiveAction(
      configuration: configuration(settings), context: context, clock: SteppingClock(),
      sweeper: ArchiveSweeper())
    #expect(await earlier.performBatch([input(object([("k", .string("a"))]), json: #"{"k":"a"}"#)]) == [nil])
    await earlier.shutdown()
    // Killed in the middle of its next line.
    let cut = Glibc.open("\(folder)/s/a.jsonl", O_WRONLY | O_APPEND)
    #expect(Glibc.write(cut, Array("{\"k\":".utf8), 5) == 5)
    Glibc.close(cut)
    // Where the file system keeps no extended attributes, nothing is found: its next line ends it.
    guard FileArchiveAction.mark(of: "\(folder)/s/a.jsonl") != nil else { return }
    let clock = SteppingClock()
    let sweeper = ArchiveSweeper()
    let action = try FileArchiveAction(
      configuration: configuration(settings), context: context, clock: clock, sweeper: sweeper)
    sweeper.scanQueue.sync { sweeper.findLeftFilesNow(of: action) }
    #expect(sweeper.state.withLock { Array($0.orphans.keys) } == ["\(folder)/s/a.jsonl"])
    clock.advance(milliseconds: 10_000)
    sweeper.sweepOrphans()
    let names = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/s")
    #expect(names.count == 1 && names[0].hasPrefix("a.jsonl.2023"), "\(names)")
    #expect(
      try String(contentsOfFile: "\(folder)/s/\(names[0])", encoding: .utf8) == "{\"k\":\"a\"}\n{\"k\":\n")
    await action.shutdown()
  }

  /// A rendered file name a rotation could not rename (its suffix would take it past the 255 bytes
  /// a name may have) is refused before a line is written to it, when the path rotates: it was
  /// written, and every later line failed "cannot rotate ...: File name too long". 229 bytes is
  /// the most; without `rotate` a longer name is written.
  @Test func aNameTooLongToRotateIsRefusedBeforeItsFirstLine() async throws {
    let folder = temporaryFolder()
    let action = try FileArchiveAction(
      configuration: configuration(
        #"{"path": "\#(folder)/a/${topic(2)}.jsonl", "rotate": {"maxBytes": 10}}"#),
      context: context)
    let long = String(repeating: "d", count: 240)
    let longest = String(repeating: "e", count: 223)
    var results: [ActionError?] = []
    for _ in 0..<3 {
      results += await action.performBatch([
        input(object([("n", .int(1))]), json: #"{"n":1}"#, topic: "in/\(long)"),
        input(object([("n", .int(2))]), json: #"{"n":2}"#, topic: "in/\(longest)"),
      ])
    }
    await action.shutdown()
    for index in stride(from: 0, to: results.count, by: 2) {
      #expect(results[index]?.kind == .permanent)
      #expect(
        results[index]?.message.hasPrefix(
          "rendered path '\(long).jsonl' has a file name of 246 bytes, which could never be rotated: a rotation adds up to 26 bytes"
        ) == true, "\(String(describing: results[index]))")
      #expect(results[index + 1] == nil, "\(String(describing: results[index + 1]))")
    }
    let names = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/a")
    #expect(!names.contains { $0.hasPrefix("ddd") }, "\(names)")
    #expect(names.filter { $0.hasPrefix("\(longest).jsonl.") }.count == 2, "\(names)")
    let plain = try FileArchiveAction(
      configuration: configuration(#"{"path": "\#(folder)/b/${topic(2)}.jsonl"}"#), context: context)
    #expect(
      await plain.performBatch([input(object([("n", .int(1))]), json: #"{"n":1}"#, topic: "in/\(long)")]) == [
        nil
      ])
    await plain.shutdown()
  }

  /// What in the path's own text makes every write fail is refused where it is written (`check`
  /// says so at its line and column): a control character (the line break a YAML `path: >` ends
  /// in, a JSON `\t`; a NUL was said as "must be a non-empty path"), a name longer than 255 bytes,
  /// and with `rotate` a file name too long to be rotated. One inside a `${...}` is no name.
  @Test func thePathsOwnTextThatEveryWriteWouldFailOnIsRefused() throws {
    let folded = try RuleDocument.parseYAML(Array("path: >\n  archive/${topic(2)}.jsonl\n".utf8))
    expectProblems([
      "2:28 'path' holds a control character (U+000A) in its own text (a YAML '>' or '|' scalar ends in a line break; '>-' and '|-' do not): every rendered path would hold it"
    ]) { () throws(ActionConfigurationError) in
      _ = try FileArchiveAction(configuration: folded, context: context)
    }
    let name256 = String(repeating: "n", count: 256)
    let name230 = String(repeating: "r", count: 224)
    let cases: [(String, String)] = [
      (
        #"{"path": "arch\tive/${topic(2)}.jsonl"}"#,
        "1:15 'path' holds a control character (U+0009) in its own text: "
      ),
      (
        #"{"path": "a/${topic(2)}\u0000.jsonl"}"#,
        "1:24 'path' holds a NUL character (U+0000): no file name can hold one"
      ),
      (
        #"{"root": "arch\u0085", "path": "${topic(2)}.jsonl"}"#,
        "1:15 'root' holds a control character (U+0085)"
      ),
      (
        #"{"path": "a/\#(name256)/${topic(2)}.jsonl"}"#,
        "1:13 'path' has a name of 256 bytes in its own text ('nnnnnnnnnnnnnnnn...'): a file or folder name is at most 255 bytes"
      ),
      (
        #"{"path": "a/${topic(2)}\#(name230).jsonl", "rotate": {"maxAgeSeconds": 60}}"#,
        "1:24 'path' ends in a file name of 230 bytes ('rrrrrrrrrrrrrrrr...'): a rotation adds up to 26 bytes"
      ),
      // A character no listing shows, below the root: passed check, and every result failed.
      (
        #"{"path": "out/x\u200B.jsonl"}"#,
        "1:16 'path' holds an invisible character (U+200B) in its own text: every rendered path would hold it"
      ),
      (
        #"{"path": "out/${topic(2)}/\u202Ex.jsonl"}"#,
        "1:27 'path' holds a bidirectional control character (U+202E) in its own text"
      ),
      (
        #"{"root": "r\u200B", "path": "a\u2028/${topic(2)}"}"#,
        "1:31 'path' holds a line separator (U+2028) in its own text"
      ),
    ]
    for (text, expected) in cases {
      expectProblems([expected]) { () throws(ActionConfigurationError) in
        _ = try FileArchiveAction(configuration: configuration(text), context: context)
      }
    }
    // In an expression a line break is no part of a name; without `rotate` a 230-byte name is fine.
    // The root's own text is the operator's folder, judged as it is (`a\u200B/` is the root here).
    for text in [
      #"{"path": "a/${topic(\n2)}.jsonl"}"#, #"{"path": "a/${topic(2)}\#(name230).jsonl"}"#,
      #"{"path": "a\u200B/${topic(2)}.jsonl"}"#,
    ] {
      #expect(throws: Never.self) {
        _ = try FileArchiveAction(configuration: configuration(text), context: context)
      }
    }
  }
}

/// Counts calls from any thread.
final class Counter: Sendable {
  private let value = Mutex(0)
  /// The number of earlier calls.
  func next() -> Int {
    value.withLock { count in
      defer { count += 1 }
      return count
    }
  }
}

@Suite struct SyncThreadsTests {
  /// No thread can be started (a pids limit): the caller runs every job itself, and returns.
  @Test(.timeLimit(.minutes(3))) func jobsRunWhenNoThreadStarts() {
    let pool = SyncThreads(limit: 4, startThread: { _ in false })
    let done = Mutex(0)
    for _ in 0..<3 {
      pool.runAll((0..<5).map { _ in { done.withLock { $0 += 1 } } })
    }
    #expect(done.withLock { $0 } == 15)
  }

  /// With threads, every job runs once and runAll returns when all have.
  @Test(.timeLimit(.minutes(3))) func jobsRunOnceEach() {
    let pool = SyncThreads(limit: 3)
    let done = Mutex([Int](repeating: 0, count: 20))
    pool.runAll((0..<20).map { index in { done.withLock { $0[index] += 1 } } })
    #expect(done.withLock { $0 } == [Int](repeating: 1, count: 20))
  }
}

/// A result `{"n": n}`.
func numbered(_ n: Int) -> ActionInput { input(object([("n", .int(n))]), json: #"{"n":\#(n)}"#) }
