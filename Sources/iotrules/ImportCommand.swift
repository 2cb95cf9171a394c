import ArgumentParser
import Daemon
import DevTools
import Foundation
import RulesEngine

/// `iotrules import`: brings rules from elsewhere.
struct ImportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import", abstract: "Import rules from other systems.", subcommands: [AWSImport.self])
}

/// `iotrules import aws FILE`: an AWS IoT topic rule (get-topic-rule or create-topic-rule JSON, or CloudFormation's AWS::IoT::TopicRule) as a
/// rule file.
struct AWSImport: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "aws",
    abstract:
      "Turn AWS get-topic-rule / create-topic-rule JSON, or a CloudFormation AWS::IoT::TopicRule, into a rule file <name>.json.",
    discussion: """
      republish, http and kafka map directly; s3 becomes a file archive (bucket/key → path); dynamoDB \
      and dynamoDBv2 become sqlite (data/dynamodb.db); lambda becomes http with a URL you must set \
      (flagged ACTION REQUIRED). Every other action is reported by name and not imported; fields \
      without an equivalent are listed. An omitted awsIotSqlVersion is written as 2015-10-08, as AWS \
      runs it. A CloudFormation template holding several rules takes --resource ID to pick one. \
      A rule whose name another rule file of the folder holds (<name>.yaml, or a file with \
      that ruleName) is not written, --force or not: --force replaces only <name>.json. Exit 0 when \
      everything mapped, 1 when some action was not imported or the result needs an edit, 64 for a \
      bad option (a --name that is no rule name, an --output that is not a folder, a --resource \
      the template lacks, or none where the template holds several rules or standard input no \
      name), 65 for input \
      that is not a topic rule, 73 when the rule file exists (no --force) or another file holds the \
      name, 74 for I/O errors.
      """
  )

  @Argument(help: "The AWS JSON file, or YAML from --output yaml (- for standard input).")
  var file: String

  @Option(help: "The rule name (default: the document's ruleName, else the file's base name).")
  var name: String?

  @Option(name: .shortAndLong, help: "The folder to write <name>.json into.")
  var output: String = "."

  @Flag(help: "Replace an existing rule file <name>.json (never another file holding the rule's name).")
  var force = false

  @Option(
    help:
      "The AWS::IoT::TopicRule resource to import, by its logical id, from a CloudFormation template holding several."
  )
  var resource: String?

  func validate() throws {
    // A bad option value is a usage error, as everywhere (65 is for input that is not a rule).
    if let name, !RuleFile.isValidRuleName(name) {
      throw ValidationError(
        "--name: invalid rule name '\(RuleFile.escapedName(name))': it must match [a-zA-Z0-9_]{1,128}")
    }
  }

  func run() throws {
    // `-o all.json` names a file: said before anything is read (it said "cannot write
    // all.json/r.json: ... A file with the same name already exists").
    if let problem = Self.folderProblem(output) {
      Console.err(
        "iotrules: error: -o \(output): \(problem); -o names the folder the rule file <name>.json goes into")
      throw ExitCodes.usage
    }
    let bytes = try readFile(file)
    let result: AWSRuleImporter.Result
    do {
      result = try AWSRuleImporter.convert(
        file: file == "-" ? "stdin" : file, bytes: bytes, name: name, fileNamesRule: file != "-",
        resource: resource)
    } catch {
      Console.err(error.description)
      throw error.isUsage ? ExitCodes.usage : ExitCodes.badRule
    }
    let folder = output.hasSuffix("/") ? String(output.dropLast()) : output
    let target = "\(folder)/\(result.name).json"
    // `aws iot get-topic-rule --rule-name HighTemp > HighTemp.json` then `import aws HighTemp.json`
    // names the output as the input: replacing it would lose the AWS original, --force or not.
    if file != "-",
      URL(fileURLWithPath: target).standardizedFileURL.resolvingSymlinksInPath()
        == URL(fileURLWithPath: file).standardizedFileURL.resolvingSymlinksInPath()
    {
      Console.err(
        "iotrules: error: \(target) is the file being imported; write the rule elsewhere with -o FOLDER (a rules folder)"
      )
      throw ExitCodes.usage
    }
    let size = result.json.utf8.count
    guard size <= RuleStore.maxRuleFileBytes else {
      // `check` and `run` would refuse it unread.
      Console.err(
        "iotrules: error: the rule file would be \(size) bytes; a rule file is at most \(RuleStore.maxRuleFileBytes) bytes (1 MiB): nothing written"
      )
      throw ExitCodes.badRule
    }
    // A folder where the file would go is not replaced, --force or not (it said "NSCocoaErrorDomain
    // error 512").
    var targetIsFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: target, isDirectory: &targetIsFolder), targetIsFolder.boolValue
    {
      Console.err(
        "iotrules: error: \(target) is a folder; nothing written (import under another --name, or move it)")
      throw ExitCodes.cannotCreate
    }
    if FileManager.default.fileExists(atPath: target) && !force {
      Console.err("iotrules: error: \(target) exists; use --force to replace it")
      throw ExitCodes.cannotCreate
    }
    // A rules folder gives a name to one file: a second rule of the name fails `check` and is not
    // loaded by `run`. --force replaces the file named, never another that holds the name.
    if let holder = Self.holder(of: result.name, in: folder, besides: target) {
      let here = FileManager.default.currentDirectoryPath
      let imported =
        file != "-" && RuleFile.lexicalPath(holder, from: here) == RuleFile.lexicalPath(file, from: here)
      Console.err(
        "iotrules: error: rule '\(result.name)' is already in \(holder)"
          + (imported ? ", the file being imported (a rule file there too)" : "")
          + ": a rules folder gives each name to one file; nothing written"
          + (imported
            ? "; write the rule to another folder with -o"
            : "; remove or rename that rule, or import this one under another --name"
              + (force ? " (--force replaces only \(target))" : "")))
      throw ExitCodes.cannotCreate
    }
    do {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      try result.json.write(toFile: target, atomically: true, encoding: .utf8)
    } catch {
      Console.err("iotrules: error: cannot write \(target): \(error.localizedDescription)")
      throw ExitCodes.io
    }
    Console.out("wrote \(target)")
    // Each line names the input and the rule: a loop importing many exports logs traceably.
    let source = "\(file == "-" ? "stdin" : file): rule '\(result.name)': "
    for note in result.notes { Console.err(source + "note: \(note)") }
    for line in result.actionRequired { Console.err(source + "ACTION REQUIRED: \(line)") }
    for action in result.unmapped {
      // `actions[2]: sns` is a kind without an equivalent; a longer entry gives its own reason.
      let detail = action.split(separator: ": ", maxSplits: 1).last ?? ""
      Console.err(
        source + "not imported: \(action)\(detail.contains(" ") ? "" : " has no equivalent in iotrules")")
    }
    // The written file is checked as `check` checks it, so SQL this engine cannot run shows up now,
    // and so do its warnings, in file order (a template reading the message's field where the
    // SELECT's was meant, a republish back into the rule: hints written for such ported rules).
    // Tests beside it run too: a re-imported rule its tests refuse is one `run` would not load.
    var checkFailed = false
    do {
      for result in try RuleChecker.check(
        paths: [target], gate: { @Sendable rule in RuleTestGate.check(rule) })
      {
        checkFailed = checkFailed || !result.diagnostics.isEmpty
        for text in RuleChecker.lines(of: result) { Console.err(RuleFile.printable(text)) }
      }
    } catch {
      checkFailed = true
      Console.err("iotrules: error: \(error)")
    }
    if !result.unmapped.isEmpty || !result.actionRequired.isEmpty || checkFailed { throw ExitCodes.failures }
  }

  /// Why `path` cannot be the folder the rule is written into (it, or the first of its folders
  /// that exists, is not a folder), or nil; a folder that does not exist yet is made.
  static func folderProblem(_ path: String) -> String? {
    if path.isEmpty { return "it is empty" }
    var current = path
    while current.count > 1, current.hasSuffix("/") { current.removeLast() }
    let named = current
    while !current.isEmpty {
      var isFolder: ObjCBool = false
      if FileManager.default.fileExists(atPath: current, isDirectory: &isFolder) {
        if isFolder.boolValue { return nil }
        return current == named ? "it is not a folder" : "\(current) is not a folder"
      }
      if current == named, RuleFile.isRuleFile(current) {
        // `-o all.json` meant as the file to write: made as a folder, it surprised.
        return "it does not exist, and it is named as a rule file, not a folder"
      }
      // The parent by its text (NSString's deletingLastPathComponent trapped on a missing `x`).
      guard let slash = current.lastIndex(of: "/") else { break }
      current = slash == current.startIndex ? "/" : String(current[..<slash])
    }
    return nil
  }

  /// The rule file of `folder`, other than `target`, whose rule is named `name`, or nil.
  static func holder(of name: String, in folder: String, besides target: String) -> String? {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue,
      let files = try? RuleStore.ruleFiles(in: [folder])
    else { return nil }
    let here = FileManager.default.currentDirectoryPath
    let written = RuleFile.lexicalPath(target, from: here)
    return files.first { other in
      guard RuleFile.lexicalPath(other, from: here) != written else { return false }
      let bytes = (try? RegularFile.read(other, limit: RuleStore.maxRuleFileBytes).get()) ?? []
      return RuleFile.declaredName(file: other, bytes: bytes) == name
    }
  }
}
