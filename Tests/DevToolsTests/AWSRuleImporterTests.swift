import Actions
import DevTools
import Foundation
import IoTSQL
import RulesEngine
import TestSupport
import Testing

@Suite("import aws") struct AWSRuleImporterTests {
  let fixtures = packageRoot + "/Tests/DevToolsTests/Fixtures/"

  @Test("get-topic-rule output: s3, dynamoDBv2, lambda mapped; sns reported; version made explicit")
  func getTopicRule() throws {
    let bytes = Array(FileManager.default.contents(atPath: fixtures + "aws_get_topic_rule.json")!)
    let result = try AWSRuleImporter.convert(file: "aws_get_topic_rule.json", bytes: bytes)
    #expect(result.name == "temperature_alerts")
    #expect(result.unmapped == ["actions[2]: sns"])
    #expect(result.actionRequired.count == 2)
    // DynamoDB kept one item per key: the table's key is not in the rule, so the user names it.
    #expect(result.actionRequired[0].hasPrefix("actions[1] dynamoDBv2 → sqlite: putItem replaced the item"))
    // The lambda action, past the sns one not imported, is the written file's actions[2].
    #expect(result.actionRequired[1].hasPrefix("actions[3] (written as actions[2]) lambda → http: set 'url'"))
    let rule = try JSONReader.parse(result.json)
    guard case .object(let object) = rule, case .array(let actions)? = object["actions"] else {
      Issue.record("not an object with actions")
      return
    }
    #expect(object["awsIotSqlVersion"] == .string("2015-10-08"))
    // The file itself says what it lacks.
    guard case .string(let description)? = object["description"] else {
      Issue.record("no description")
      return
    }
    #expect(
      description.hasSuffix(
        "[imported from AWS without: actions[2]: sns] [ACTION REQUIRED: actions[1] dynamoDBv2 → sqlite: putItem replaced the item with the same key; give the sqlite action 'key' (the DynamoDB table's key attributes, as \"key\": \"deviceId\") to keep one row per key, else each result is a new row; actions[3] (written as actions[2]) lambda → http: set 'url' to an HTTP endpoint that runs arn:aws:lambda:us-east-1:123456789012:function:my-function]"
      ), "\(description)")
    #expect(actions.count == 3)
    #expect(
      actions[0]
        == .object([
          "file": .object(["root": .string("my-bucket"), "path": .string("${topic()}/${timestamp()}")])
        ]))
    #expect(
      actions[1]
        == .object([
          "sqlite": .object(["database": .string("data/dynamodb.db"), "table": .string("my_table")])
        ]))
    #expect(
      object["errorAction"]
        == .object(["republish": .object(["topic": .string("errors/${topic()}"), "qos": .int(1)])]))
    // The imported file does not load until the endpoint ACTION REQUIRED names is set (a `.invalid`
    // host never resolves); then it is a valid rule.
    #expect(throws: RuleFileError.self) {
      try RulePreview.load(file: "temperature_alerts.json", bytes: Array(result.json.utf8))
    }
    let endpointSet = result.json.replacingOccurrences(
      of: "https://SET-ME.invalid/", with: "https://lambda.example.com/")
    let preview = try RulePreview.load(file: "temperature_alerts.json", bytes: Array(endpointSet.utf8))
    #expect(preview.program.version == .v2015_10_08)
  }

  /// CloudFormation's spelling is read as the API's: a template with one rule, the resource, or its
  /// `Properties` (`TopicRulePayload`, `Sql`, `Republish`); an intrinsic function is refused at it.
  @Test func cloudFormationRules() throws {
    let properties = #"""
      {"RuleName": "shadow_store", "TopicRulePayload": {"Sql": "SELECT state.reported.* FROM '$aws/things/+/shadow/update/accepted'",
       "AwsIotSqlVersion": "2016-03-23", "RuleDisabled": true,
       "Actions": [{"Republish": {"Topic": "out/${topic(3)}", "RoleArn": "arn:aws:iam::1:role/r", "Qos": 1}}],
       "ErrorAction": {"S3": {"BucketName": "errs", "Key": "${topic()}", "RoleArn": "arn"}}}}
      """#
    let expected: Value = .object([
      "sql": .string("SELECT state.reported.* FROM '$aws/things/+/shadow/update/accepted'"),
      "awsIotSqlVersion": .string("2016-03-23"), "ruleDisabled": .bool(true),
      "actions": .array([
        .object(["republish": .object(["topic": .string("out/${topic(3)}"), "qos": .int(1)])])
      ]),
      "errorAction": .object(["file": .object(["root": .string("errs"), "path": .string("${topic()}")])]),
    ])
    let resource = #"{"Type": "AWS::IoT::TopicRule", "Properties": \#(properties)}"#
    let template = #"{"Resources": {"Table": {"Type": "AWS::DynamoDB::Table"}, "Store": \#(resource)}}"#
    for document in [properties, resource, template] {
      let result = try AWSRuleImporter.convert(file: "cfn.json", bytes: Array(document.utf8))
      #expect(result.name == "shadow_store")
      #expect(try JSONReader.parse(result.json) == expected, "\(result.json)")
    }
    let intrinsic = #"{"TopicRulePayload": {"Sql": {"Fn::Sub": "SELECT * FROM '${T}'"}, "Actions": []}}"#
    #expect {
      try AWSRuleImporter.convert(file: "cfn.json", bytes: Array(intrinsic.utf8))
    } throws: {
      "\($0)".contains("cfn.json:1:30: error: 'Sql' is Fn::Sub, a CloudFormation function")
    }
    // A function where the value is dropped anyway (a role) is dropped with it; the strings
    // CloudFormation takes for RuleDisabled and Qos are read; ClientProperties keep their keys; the
    // logical id names a rule without RuleName.
    let template2 = #"""
      {"Resources": {"StoreRule": {"Type": "AWS::IoT::TopicRule", "Properties": {"TopicRulePayload": {
        "Sql": "SELECT * FROM 'a'", "AwsIotSqlVersion": "2016-03-23", "RuleDisabled": "true",
        "Actions": [{"Republish": {"Topic": "b", "Qos": "1", "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]}}},
                    {"Kafka": {"Topic": "k", "ClientProperties": {"bootstrap.servers": "127.0.0.1:9092", "Acks": "all"}}}]}}}}}
      """#
    let result = try AWSRuleImporter.convert(file: "cfn.json", bytes: Array(template2.utf8))
    #expect(result.name == "StoreRule")
    // A function elsewhere in an action keeps that action out; a computed RuleName gives way to the
    // logical id; one in RuleDisabled is refused at it.
    let computed = #"""
      {"Resources": {"R1": {"Type": "AWS::IoT::TopicRule", "Properties": {"RuleName": {"Fn::Sub": "r-${Env}"},
        "TopicRulePayload": {"Sql": "SELECT * FROM 'a'", "Actions": [{"Republish": {"Topic": "b"}},
          {"Kafka": {"Topic": "k", "ClientProperties": {"bootstrap.servers": "h:9092", "sasl.password": {"Ref": "Pw"}}}},
          {"Sns": {"TargetArn": {"Ref": "Topic"}, "RoleArn": "arn:aws:iam::1:role/r"}}]}}}}}
      """#
    let partial = try AWSRuleImporter.convert(file: "cfn.json", bytes: Array(computed.utf8))
    #expect(partial.name == "R1")
    #expect(
      partial.unmapped == [
        // A kind never imported says so, not its function (which read as the only obstacle).
        "actions[1]: kafka.clientProperties.sasl.password (Ref) is a CloudFormation function",
        "actions[2]: sns",
      ])
    let disabledByRef =
      #"{"TopicRulePayload": {"Sql": "SELECT * FROM 'a'", "RuleDisabled": {"Ref": "Off"}, "Actions": []}}"#
    #expect {
      try AWSRuleImporter.convert(file: "cfn.json", bytes: Array(disabledByRef.utf8))
    } throws: {
      "\($0)".contains("'RuleDisabled' is Ref, a CloudFormation function")
    }
    #expect(
      try JSONReader.parse(result.json)
        == .object([
          "sql": .string("SELECT * FROM 'a'"), "awsIotSqlVersion": .string("2016-03-23"),
          "ruleDisabled": .bool(true),
          "actions": .array([
            .object(["republish": .object(["topic": .string("b"), "qos": .int(1)])]),
            .object([
              "kafka": .object([
                "bootstrapServers": .string("127.0.0.1:9092"), "topic": .string("k"),
                // AWS's default protocol, SSL, written out: a kafka action here defaults to plaintext.
                "clientProperties": .object(["Acks": .string("all"), "security.protocol": .string("SSL")]),
              ])
            ]),
          ]),
        ]), "\(result.json)")
    // CloudFormation takes its Boolean and Integer properties as strings: batching too.
    let batching = #"""
      {"TopicRulePayload": {"Sql": "SELECT * FROM 'a'", "Actions": [{"Http": {"Url": "https://h.example/x",
        "EnableBatching": "true", "BatchConfig": {"MaxBatchSize": "5", "MaxBatchOpenMs": "50"}}}]}}
      """#
    let batched = try AWSRuleImporter.convert(file: "cfn.json", bytes: Array(batching.utf8))
    guard case .object(let batchedRule) = try JSONReader.parse(batched.json),
      case .array(let batchedActions) = batchedRule["actions"], case .object(let http) = batchedActions.first,
      case .object(let httpSettings) = http["http"]
    else {
      Issue.record("\(batched.json)")
      return
    }
    #expect(
      httpSettings["batch"] == .object(["maxSize": .int(5), "maxDelayMs": .int(50)]), "\(batched.json)")
    let two = #"{"Resources": {"A": \#(resource), "B": \#(resource)}}"#
    #expect {
      try AWSRuleImporter.convert(file: "cfn.json", bytes: Array(two.utf8))
    } throws: {
      // The command line is at fault (exit 64): it picked none.
      "\($0)".contains(
        "the template has 2 AWS::IoT::TopicRule resources (A, B): import each with --resource ID")
        && ($0 as? AWSRuleImporter.ImportError)?.isUsage == true
    }
    // --resource picks one by its logical id.
    let picked = try AWSRuleImporter.convert(file: "cfn.json", bytes: Array(two.utf8), resource: "B")
    #expect(picked.name == "shadow_store")
    #expect {
      try AWSRuleImporter.convert(file: "cfn.json", bytes: Array(two.utf8), resource: "C")
    } throws: {
      "\($0)".contains("the template has no AWS::IoT::TopicRule resource 'C'; it has A, B")
        && ($0 as? AWSRuleImporter.ImportError)?.isUsage == true
    }
    // A template without rules is input that is not a topic rule (65).
    #expect {
      try AWSRuleImporter.convert(
        file: "cfn.json", bytes: Array(#"{"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}"#.utf8))
    } throws: {
      ($0 as? AWSRuleImporter.ImportError)?.isUsage == false
    }
  }

  @Test("create-topic-rule input: republish, http, kafka direct; dynamoDB to sqlite needs the user")
  func createTopicRule() throws {
    let bytes = Array(FileManager.default.contents(atPath: fixtures + "aws_create_topic_rule.json")!)
    let result = try AWSRuleImporter.convert(file: "x.json", bytes: bytes)
    #expect(result.name == "forward_readings")
    #expect(result.unmapped.isEmpty)
    // AWS's item (the keys, the result in one column) is not the sqlite action's row.
    #expect(
      result.actionRequired == [
        "actions[3] dynamoDB → sqlite: AWS writes the result into one column 'payload' beside the key columns device = '${topic(2)}', ts = '${timestamp()}'; here each key of the result becomes a column and the key columns are not written: add them to the SELECT (`topic(2) AS device`, `timestamp() AS ts`) or give the sqlite action 'columns', and 'key': [\"device\", \"ts\"] to keep one row per key, as DynamoDB does; the action keeps DynamoDB's settings, which check refuses until you remove them"
      ])
    // Until they are removed, `check` refuses the rule, at the first of them (it passed, and the
    // rule ran without its key columns).
    #expect {
      try RulePreview.load(file: "forward_readings.json", bytes: Array(result.json.utf8))
    } throws: {
      "\($0)".contains(
        "forward_readings.json:50:9: error: sqlite action: 'hashKeyField' is the dynamoDB action's (as are 'hashKeyValue',"
      )
    }
    guard case .object(var edited) = try JSONReader.parse(result.json),
      case .array(var actions)? = edited["actions"], case .object(let action) = actions[3],
      case .object(var sqlite)? = action["sqlite"]
    else {
      Issue.record("\(result.json)")
      return
    }
    #expect(
      sqlite.keys.filter(SQLiteAction.dynamoDBSettings.contains) == [
        "hashKeyField", "hashKeyValue", "rangeKeyField", "rangeKeyValue",
      ])
    for key in SQLiteAction.dynamoDBSettings { sqlite[key] = nil }
    actions[3] = .object(["sqlite": .object(sqlite)])
    edited["actions"] = .array(actions)
    let preview = try RulePreview.load(
      file: "forward_readings.json", bytes: Array(JSONWriter.string(.object(edited)).utf8))
    #expect(preview.actions.map(\.kind) == ["republish", "http", "kafka", "sqlite"])
    let context = EvaluationContext(
      topic: "sensors/9/readings", payload: Array(#"{"v": 1}"#.utf8), clientID: "c1")
    guard case .matched(_, _, let rendered) = preview.run(context) else {
      Issue.record("no match")
      return
    }
    guard case .object(let republish) = rendered[0], case .object(let kafka) = rendered[2] else { return }
    #expect(republish["topic"] == .string("archive/9"))
    #expect(kafka["bootstrapServers"] == .string("kafka.example.com:9092"))
    #expect(kafka["key"] == .string("9"))
    // AWS connected over TLS, its default: so does the imported action, said. The database file
    // is iotrules' choice, said too.
    guard case .object(let properties)? = kafka["clientProperties"] else {
      Issue.record("\(kafka)")
      return
    }
    #expect(properties["security.protocol"] == .string("SSL"), "\(kafka)")
    #expect(
      result.notes.contains(
        "actions[2] kafka: clientProperties had no security.protocol; AWS's default, SSL, is written out (an iotrules kafka action without one connects in plaintext)"
      ), "\(result.notes)")
    #expect(
      result.notes.contains {
        $0.hasPrefix("actions[3] sqlite.database: DynamoDB names no file; the rows go to data/dynamodb.db")
      }, "\(result.notes)")
  }

  @Test("the CLI writes <name>.json, honours --name and --output, exits 1 on unmapped actions")
  func commandLine() throws {
    let folder = temporaryFolder("import")
    let (status, out, err) = try runBinary(
      ["import", "aws", fixtures + "aws_get_topic_rule.json", "--output", "rules"], in: folder)
    #expect(status == 1)
    #expect(out.hasPrefix("wrote rules/temperature_alerts.json\n"))
    #expect(err.contains("not imported: actions[2]: sns has no equivalent in iotrules"))
    #expect(err.contains("ACTION REQUIRED: actions[3] (written as actions[2]) lambda → http"))
    // Notes go where the rest goes, each line naming the input and the rule (they went to standard
    // output without either).
    #expect(
      err.contains("aws_get_topic_rule.json: rule 'temperature_alerts': note: awsIotSqlVersion was omitted"),
      "\(err)")
    #expect(!out.contains("note:"), "\(out)")
    #expect(FileManager.default.fileExists(atPath: folder + "/rules/temperature_alerts.json"))

    let (requiredStatus, requiredOut, requiredErr) = try runBinary(
      ["import", "aws", fixtures + "aws_create_topic_rule.json", "--name", "renamed"], in: folder)
    #expect(requiredStatus == 1)
    #expect(requiredOut.hasPrefix("wrote ./renamed.json\n"))
    #expect(requiredErr.contains("ACTION REQUIRED: actions[3] dynamoDB → sqlite"), "\(requiredErr)")
    let mapped = #"{"sql": "SELECT * FROM 'a'", "actions": [{"republish": {"topic": "b/${topic()}"}}]}"#
    let (okStatus, okOut, _) = try runBinary(
      ["import", "aws", "-", "--name", "mapped"], input: mapped, in: folder)
    #expect(okStatus == 0)
    #expect(okOut.hasPrefix("wrote ./mapped.json\n"))
    let (checkStatus, _, _) = try runBinary(
      ["import", "aws", fixtures + "aws_create_topic_rule.json", "--name", "renamed"], in: folder)
    // An existing rule file is not replaced: EX_CANTCREAT.
    #expect(checkStatus == 73)
    // Nor a folder of its name, --force or not (said as such, not as Foundation's error 512).
    try FileManager.default.createDirectory(
      atPath: folder + "/folded.json", withIntermediateDirectories: true)
    let (folderStatus, _, folderErr) = try runBinary(
      ["import", "aws", "-", "--name", "folded", "--force"], input: mapped, in: folder)
    #expect(
      folderStatus == 73 && folderErr.contains("./folded.json is a folder; nothing written"), "\(folderErr)")
    // Standard input has no file name to name the rule by: without ruleName or --name, a usage
    // error, the command line lacking --name (it was written as stdin.json).
    let (stdinStatus, _, stdinErr) = try runBinary(
      ["import", "aws", "-"], input: #"{"sql": "SELECT * FROM 'a'", "actions": []}"#, in: folder)
    #expect(stdinStatus == 64 && stdinErr.contains("give one with --name"), "\(stdinErr)")
    #expect(!FileManager.default.fileExists(atPath: folder + "/stdin.json"))
    // A re-import is checked as `check` checks it, tests beside included: a changed rule its tests
    // refuse is one `run` would not load (it exited 0).
    try #"[{"name": "any", "topic": "a", "payload": {"t": 1}, "expect": {"output": {"t": 1}}}]"#.write(
      toFile: folder + "/mapped.test.json", atomically: true, encoding: .utf8)
    let changed = #"{"sql": "SELECT * FROM 'a' WHERE t > 5", "actions": [{"republish": {"topic": "b"}}]}"#
    let (testedStatus, _, testedErr) = try runBinary(
      ["import", "aws", "-", "--name", "mapped", "--force"], input: changed, in: folder)
    #expect(testedStatus == 1, "\(testedErr)")
    #expect(testedErr.contains("test 'any' of rule 'mapped' failed"), "\(testedErr)")
    try? FileManager.default.removeItem(atPath: folder)
  }

  /// A rules folder gives each name to one file: an import beside another file holding its name
  /// made two rules of one name, which `check` then failed.
  @Test("import refuses a name another rule file of the folder holds, --force or not")
  func nameHeldByAnotherFile() throws {
    let folder = temporaryFolder("import-clash")
    let rule =
      #"{"sql": "SELECT * FROM 'a'", "awsIotSqlVersion": "2016-03-23", "actions": [{"republish": {"topic": "b"}}]}"#
    try FileManager.default.createDirectory(atPath: folder + "/out7", withIntermediateDirectories: true)
    try "sql: SELECT * FROM 'a'\nactions: []\n".write(
      toFile: folder + "/out7/yrule.yaml", atomically: true, encoding: .utf8)
    for force in [false, true] {
      let (status, out, err) = try runBinary(
        ["import", "aws", "-", "--name", "yrule", "-o", "out7"] + (force ? ["--force"] : []), input: rule,
        in: folder)
      #expect(status == 73, "\(out)\(err)")
      #expect(
        err.hasPrefix(
          "iotrules: error: rule 'yrule' is already in out7/yrule.yaml: a rules folder gives each name to one file; nothing written; remove or rename that rule, or import this one under another --name"
        ), "\(err)")
      #expect(err.contains("(--force replaces only out7/yrule.json)") == force, "\(err)")
      #expect(!FileManager.default.fileExists(atPath: folder + "/out7/yrule.json"))
    }
    // A file of another name whose ruleName is the name.
    try FileManager.default.removeItem(atPath: folder + "/out7/yrule.yaml")
    try #"{"ruleName": "yrule", "sql": "SELECT * FROM 'a'", "actions": []}"#.write(
      toFile: folder + "/out7/other.json", atomically: true, encoding: .utf8)
    let (namedStatus, _, namedErr) = try runBinary(
      ["import", "aws", "-", "--name", "yrule", "-o", "out7"], input: rule, in: folder)
    #expect(namedStatus == 73)
    #expect(namedErr.hasPrefix("iotrules: error: rule 'yrule' is already in out7/other.json:"), "\(namedErr)")
    // The AWS file imported into its own folder holds the name too: it is a rule file there.
    try #"{"ruleName": "zrule", "sql": "SELECT * FROM 'a'", "actions": []}"#.write(
      toFile: folder + "/out7/aws.json", atomically: true, encoding: .utf8)
    let (selfStatus, _, selfErr) = try runBinary(
      ["import", "aws", "out7/aws.json", "-o", "out7"], in: folder)
    #expect(selfStatus == 73)
    #expect(
      selfErr.contains(
        "rule 'zrule' is already in out7/aws.json, the file being imported (a rule file there too): a rules folder gives each name to one file; nothing written; write the rule to another folder with -o"
      ), "\(selfErr)")
    // The file of the name itself is replaced with --force, as before.
    try FileManager.default.removeItem(atPath: folder + "/out7/other.json")
    try #"{"sql": "SELECT * FROM 'old'", "actions": []}"#.write(
      toFile: folder + "/out7/yrule.json", atomically: true, encoding: .utf8)
    let (forceStatus, forceOut, forceErr) = try runBinary(
      ["import", "aws", "-", "--name", "yrule", "-o", "out7", "--force"], input: rule, in: folder)
    #expect(forceStatus == 0, "\(forceOut)\(forceErr)")
    #expect(
      try String(contentsOfFile: folder + "/out7/yrule.json", encoding: .utf8).contains("SELECT * FROM 'a'"))
    try? FileManager.default.removeItem(atPath: folder)
  }

  /// A bad option value is a usage error (64), as in every command; 65 is for input that is not
  /// a topic rule. A `-o` naming a file said "cannot write all.json/r.json: ... already exists".
  @Test("a bad --name or an -o that is not a folder is a usage error, said as such")
  func badOptionValues() throws {
    let folder = temporaryFolder("import-options")
    let rule = #"{"sql": "SELECT * FROM 'a'", "actions": [{"republish": {"topic": "b"}}]}"#
    let (nameStatus, _, nameErr) = try runBinary(
      ["import", "aws", "-", "--name", "bad-name"], input: rule, in: folder)
    #expect(nameStatus == 64)
    #expect(
      nameErr.contains("--name: invalid rule name 'bad-name': it must match [a-zA-Z0-9_]{1,128}"),
      "\(nameErr)")
    try "{}".write(toFile: folder + "/all.json", atomically: true, encoding: .utf8)
    for output in ["all.json", "all.json/", "all.json/sub"] {
      let (status, _, err) = try runBinary(
        ["import", "aws", "-", "--name", "r", "-o", output], input: rule, in: folder)
      #expect(status == 64, "\(err)")
      let which = output == "all.json/sub" ? "all.json is not a folder" : "it is not a folder"
      #expect(
        err
          == "iotrules: error: -o \(output): \(which); -o names the folder the rule file <name>.json goes into\n",
        "\(err)")
    }
    try? FileManager.default.removeItem(atPath: folder)
  }

  @Test(
    "what AWS requires, or what changes meaning, needs the user: missing fields, SigV4, templated buckets")
  func fieldsThatNeedTheUser() throws {
    func convert(_ actions: String) throws -> AWSRuleImporter.Result {
      try AWSRuleImporter.convert(
        file: "r.json", bytes: Array(#"{"sql": "SELECT * FROM 'a/#'", "actions": [\#(actions)]}"#.utf8))
    }
    func actions(_ result: AWSRuleImporter.Result) throws -> [Value] {
      guard case .object(let object) = try JSONReader.parse(result.json),
        case .array(let list)? = object["actions"]
      else { return [] }
      return list
    }
    // AWS requires an s3 bucket and key and a DynamoDB table: without them the action is not
    // imported (no value is made up), and the file says so.
    let missing = try convert(
      #"{"s3": {"bucketName": "b"}}, {"dynamoDB": {"roleArn": "r"}}, {"dynamoDBv2": {}}"#)
    #expect(
      missing.unmapped == [
        "actions[0]: s3.key is missing (AWS requires it)",
        "actions[1]: dynamoDB.tableName is missing (AWS requires it)",
        "actions[2]: dynamoDBv2.putItem.tableName is missing (AWS requires it)",
      ], "\(missing.unmapped)")
    #expect(try actions(missing).isEmpty)
    // A Lambda function, required too; one named without its ARN keeps its name in the placeholder.
    let lambdas = try convert(
      #"{"lambda": {}}, {"lambda": {"functionArn": ""}}, {"lambda": {"functionArn": "proc"}}"#)
    #expect(
      lambdas.unmapped == [
        "actions[0]: lambda.functionArn is missing (AWS requires it)",
        "actions[1]: lambda.functionArn is empty (AWS requires it)",
      ], "\(lambdas.unmapped)")
    #expect(
      try actions(lambdas) == [
        .object(["http": .object(["url": .string("https://SET-ME.invalid/lambda/proc")])])
      ])
    let empty = try convert(#"{"s3": {"bucketName": "", "key": "k"}}"#)
    #expect(empty.unmapped == ["actions[0]: s3.bucketName is empty (AWS requires it)"], "\(empty.unmapped)")
    // A value of the wrong type is said as such, not as missing; settings that are no object too.
    let typed = try convert(#"{"s3": {"bucketName": 5, "key": "k"}}, {"republish": "x"}"#)
    #expect(
      typed.unmapped == [
        "actions[0]: s3.bucketName must be a string, not a number",
        "actions[1]: republish: its settings must be an object, not a string",
      ], "\(typed.unmapped)")
    // Nor is a topic or URL made up: they were written "" without a word.
    let connectors = try convert(
      #"{"republish": {"topic": 5}}, {"republish": {}}, {"http": {"url": null}}, {"kafka": {"topic": ""}}"#)
    #expect(
      connectors.unmapped == [
        "actions[0]: republish.topic must be a string, not a number",
        "actions[1]: republish.topic is missing (AWS requires it)",
        "actions[2]: http.url must be a string, not null",
        "actions[3]: kafka.topic is empty (AWS requires it)",
      ], "\(connectors.unmapped)")
    #expect(try actions(connectors).isEmpty)
    // Signed requests would go unsigned.
    let signed = try convert(#"{"http": {"url": "https://h.example.com/", "auth": {"sigv4": {}}}}"#)
    #expect(signed.actionRequired.count == 1 && signed.actionRequired[0].contains("SigV4"))
    // ... so `auth` stays, for `check` to refuse until the user removes it (dropped, the rule
    // passed `check`).
    #expect(
      try actions(signed)
        == [
          .object([
            "http": .object([
              "url": .string("https://h.example.com/"), "auth": .object(["sigv4": .object([:])]),
            ])
          ])
        ])
    // What needs an edit is written into the file too (stderr is gone once it is deployed).
    guard case .object(let signedRule) = try JSONReader.parse(signed.json),
      case .string(let description)? = signedRule["description"]
    else {
      Issue.record("no description")
      return
    }
    #expect(description.hasPrefix("[ACTION REQUIRED: actions[0] http.auth: SigV4"), "\(description)")
    // A templated bucket is no folder name: it leads the path, under the default root.
    let templated = try convert(
      #"{"s3": {"bucketName": "${topic(1)}-bucket", "key": "${topic()}/${timestamp()}"}}"#)
    #expect(templated.actionRequired.isEmpty)
    #expect(
      try actions(templated)
        == [.object(["file": .object(["path": .string("${topic(1)}-bucket/${topic()}/${timestamp()}")])])])
    // A templated DynamoDB table (one table per rendering in AWS) is one table here: kept as it is,
    // so that `check` refuses it until the user names one (`t___topic_2__` passed, one table for all).
    let perTopic = try convert(#"{"dynamoDBv2": {"putItem": {"tableName": "${topic()}"}}}"#)
    #expect(
      perTopic.actionRequired.first
        == "actions[0]: table '${topic()}' is a template, one table per rendering in AWS; the sqlite action writes one table: name it, or write one rule per table",
      "\(perTopic.actionRequired)")
    #expect(perTopic.json.contains(#""table": "${topic()}""#), "\(perTopic.json)")
    // iotrules's own kinds, and a kind spelt as CloudFormation spells it, say so.
    let own = try convert(#"{"sqlite": {"database": "a.db", "table": "t"}}, {"Republish": {"topic": "x"}}"#)
    #expect(
      own.unmapped.first?.contains("sqlite is an iotrules action, not an AWS one") == true, "\(own.unmapped)")
    #expect(own.unmapped.last?.contains("camelCase, 'republish'") == true, "\(own.unmapped)")
    // S3 kept each result as an object: here it is a line, one that is not JSON in base64.
    #expect(templated.notes.contains { $0.contains("one that is not JSON is the line {\"payload_base64\"") })
    // A constant key: S3 overwrote one object, the archive appends.
    let constant = try convert(#"{"s3": {"bucketName": "b", "key": "latest.json"}}"#)
    #expect(constant.notes.contains { $0.contains("S3 overwrote that one object") }, "\(constant.notes)")
    // An S3 key with a '..' segment is legal there, refused as a file path: the rule needs an edit.
    let climbing = try convert(#"{"s3": {"bucketName": "b", "key": "../../etc/${x}"}}"#)
    #expect(
      climbing.actionRequired == [
        "actions[0] s3.key '../../etc/${x}': an S3 key may have a '..', '.' or empty segment or start with '/', a file path below the archive root may not; rewrite the key"
      ], "\(climbing.actionRequired)")
    // A rule none of whose actions came over is written disabled: enabled, it would take its
    // messages and write them nowhere.
    let none = try convert(#"{"sns": {"targetArn": "t"}}"#)
    guard case .object(let rule) = try JSONReader.parse(none.json) else { return }
    #expect(rule["ruleDisabled"] == .bool(true))
    #expect(none.unmapped == ["actions[0]: sns"])
    // An empty list in AWS stays an enabled rule with no actions.
    guard case .object(let empty) = try JSONReader.parse(try convert("").json) else { return }
    #expect(empty["ruleDisabled"] == nil)
  }

  /// A CloudFormation template in YAML writes its functions short (`!GetAtt Role.Arn`, `!Sub`):
  /// read as their long forms, a role dropped as in JSON, one in the SQL refused at its place.
  /// What would change what the rule does is not imported as something else: a DynamoDB DELETE
  /// (or an operation a template picks) became a sqlite action adding rows; a misspelt action
  /// setting (`Qos`) was dropped with a note and the QoS became 0.
  @Test func changesOfMeaningAreNotImportedSilently() throws {
    func convert(_ actions: String) throws -> AWSRuleImporter.Result {
      try AWSRuleImporter.convert(
        file: "r.json",
        bytes: Array(
          #"{"sql": "SELECT * FROM 'a/#'", "awsIotSqlVersion": "2016-03-23", "actions": [\#(actions)]}"#.utf8)
      )
    }
    let dynamo = #""tableName": "T", "hashKeyField": "id", "hashKeyValue": "${id}""#
    let deleting = try convert(
      #"{"dynamoDB": {\#(dynamo), "operation": "DELETE"}}, {"dynamoDB": {\#(dynamo), "operation": "${op}"}}"#)
    #expect(
      deleting.unmapped == [
        "actions[0]: dynamoDB with operation 'DELETE': a sqlite action only writes rows (INSERT, or UPDATE with 'key')",
        "actions[1]: dynamoDB with operation '${op}': a sqlite action only writes rows (INSERT, or UPDATE with 'key')",
      ], "\(deleting.unmapped)")
    // No note of a database for an action not written.
    #expect(!deleting.notes.contains { $0.contains("dynamodb.db") }, "\(deleting.notes)")
    let updating = try convert(#"{"dynamoDB": {\#(dynamo), "operation": "UPDATE"}}"#)
    #expect(updating.unmapped.isEmpty)
    #expect(
      updating.actionRequired.contains { $0.contains("operation UPDATE → sqlite: give the action 'key'") })
    let inserting = try convert(#"{"dynamoDB": {\#(dynamo), "operation": "INSERT"}}"#)
    #expect(inserting.unmapped.isEmpty && !inserting.notes.contains { $0.contains("operation") })
    let misspelt = try convert(#"{"republish": {"topic": "b", "Qos": 1, "extra": 2}}"#)
    #expect(
      misspelt.actionRequired == ["actions[0] republish.Qos: unknown field; did you mean 'qos'?"],
      "\(misspelt.actionRequired)")
    // Kept as written, so that check refuses the rule until it is corrected.
    #expect(misspelt.json.contains(#""Qos": 1"#), "\(misspelt.json)")
    #expect(
      misspelt.notes.contains("actions[0] republish.extra: unknown field; dropped"), "\(misspelt.notes)")
    // A misspelling of a field dropped anyway changes nothing: a note, as before. One of an action
    // that becomes another kind is not written there (its fields differ), said as needing an edit.
    let harmless = try convert(
      #"{"republish": {"topic": "b", "RoleArn": "r"}}, {"s3": {"bucketName": "b", "key": "k", "CannedAcl": "private"}}"#
    )
    #expect(harmless.actionRequired.isEmpty, "\(harmless.actionRequired)")
    #expect(harmless.notes.contains("actions[1] s3.CannedAcl: unknown field; dropped"), "\(harmless.notes)")
    let converted = try convert(#"{"dynamoDB": {\#(dynamo), "Operation": "DELETE"}}"#)
    #expect(
      converted.actionRequired.contains(
        "actions[0] dynamoDB.Operation: unknown field; did you mean 'operation'? (not imported: correct it and import again)"
      ), "\(converted.actionRequired)")
    #expect(!converted.json.contains(#""Operation":"#), "\(converted.json)")
    let typed = try convert(#"{"dynamoDB": {\#(dynamo), "operation": 3}}"#)
    #expect(
      typed.unmapped == ["actions[0]: dynamoDB.operation must be a string, not a number"], "\(typed.unmapped)"
    )
    // CloudFormation functions where a name or description goes are said, not lost without a word.
    let template = """
      Type: AWS::IoT::TopicRule
      Properties:
        RuleName: !Ref RuleNameParam
        TopicRulePayload:
          Sql: SELECT * FROM 'q'
          AwsIotSqlVersion: "2016-03-23"
          Description: !Sub "Rule for ${Env}"
          Actions:
            - Republish:
                Topic: out
      """
    let functions = try AWSRuleImporter.convert(file: "d.yaml", bytes: Array(template.utf8))
    #expect(functions.name == "d")
    // With --name the rule is named as asked: nothing to say about RuleName.
    let named = try AWSRuleImporter.convert(file: "d.yaml", bytes: Array(template.utf8), name: "given")
    #expect(named.name == "given" && !named.notes.contains { $0.contains("'RuleName'") }, "\(named.notes)")
    #expect(
      functions.notes.prefix(2) == [
        "'RuleName' is Ref, a CloudFormation function: the rule is named after the file (give another with --name)",
        "'Description' is Fn::Sub, a CloudFormation function: not imported (write one in the rule file)",
      ], "\(functions.notes)")
    // A template of several rules is said at the first rule's name.
    let stack = """
      Resources:
        Role:
          Type: AWS::IAM::Role
        TelemetryRule:
          Type: AWS::IoT::TopicRule
          Properties: {TopicRulePayload: {Sql: "SELECT * FROM 'a'", Actions: []}}
        OtherRule:
          Type: AWS::IoT::TopicRule
          Properties: {TopicRulePayload: {Sql: "SELECT * FROM 'b'", Actions: []}}
      """
    #expect {
      try AWSRuleImporter.convert(file: "stack.yaml", bytes: Array(stack.utf8))
    } throws: { error in
      "\(error)".hasPrefix("stack.yaml:4:3: error: the template has 2 AWS::IoT::TopicRule resources")
    }
    #expect {
      try AWSRuleImporter.convert(file: "stack.yaml", bytes: Array(stack.utf8), resource: "Nope")
    } throws: { error in
      "\(error)".hasPrefix("stack.yaml:1:1: error: the template has no AWS::IoT::TopicRule resource 'Nope'")
    }
  }

  /// What changed the rule without a word: a batchConfig setting misspelt or of another type (a
  /// template's string "true" for BatchAcrossTopics lost it), a rule field beside the payload (a
  /// rule meant to be off was written enabled); and Fn::If where actions go is said as a function.
  @Test func settingsAroundThePayloadAndInBatchConfigAreNotLostSilently() throws {
    func convert(_ text: String, file: String = "r.json") throws -> AWSRuleImporter.Result {
      try AWSRuleImporter.convert(file: file, bytes: Array(text.utf8))
    }
    let template = """
      Type: AWS::IoT::TopicRule
      Properties:
        RuleName: across
        TopicRulePayload:
          Sql: SELECT * FROM 'a'
          AwsIotSqlVersion: "2016-03-23"
          Actions:
            - Http: {Url: "https://example.com/x", EnableBatching: "true", BatchConfig: {BatchAcrossTopics: "true", MaxBatchSize: "10"}}
            - Http: {Url: "https://example.com/y", EnableBatching: true, BatchConfig: {MaxBatchSise: 3}}
          ErrorAction: !If [IsProd, {Republish: {Topic: e}}, !Ref AWS::NoValue]
      """
    let across = try convert(template, file: "t.yaml")
    #expect(across.json.contains(#""maxSize": 10,\#n          "acrossTopics": true"#), "\(across.json)")
    #expect(
      across.actionRequired == [
        "actions[1] http.batchConfig.maxBatchSise: unknown field; did you mean 'maxBatchSize'? (not imported: correct it and import again)"
      ], "\(across.actionRequired)")
    #expect(across.unmapped == ["errorAction: Fn::If, a CloudFormation function (import the deployed rule)"])
    let typed = try convert(
      #"{"sql": "SELECT * FROM 'a'", "actions": [{"http": {"url": "https://e.com", "enableBatching": true, "batchConfig": {"maxBatchSize": "3"}}}]}"#
    )
    #expect(
      typed.actionRequired == [
        "actions[0] http.batchConfig.maxBatchSize must be a whole number, not a string (not imported: correct it and import again)"
      ], "\(typed.actionRequired)")
    #expect(throws: AWSRuleImporter.ImportError.self) {
      try convert(
        #"{"ruleName": "m", "ruleDisabled": true, "topicRulePayload": {"sql": "SELECT * FROM 'a'", "actions": []}}"#
      )
    }
    do {
      _ = try convert(
        #"{"ruleName": "m", "ruleDisabled": true, "topicRulePayload": {"sql": "SELECT * FROM 'a'", "actions": []}}"#
      )
    } catch {
      #expect(
        "\(error)"
          == "r.json:1:19: error: 'ruleDisabled' stands beside 'topicRulePayload', where AWS's documents hold only 'ResponseMetadata', 'createdAt', 'ruleArn', 'ruleName', 'tags': a field of the rule goes inside 'topicRulePayload'"
      )
    }
    // boto3's get_topic_rule output, as `check` takes it: imported.
    let boto = try convert(
      #"{"ruleArn": "arn:aws:iot:eu-west-1:1:rule/b", "rule": {"ruleName": "b", "sql": "SELECT * FROM 'a'", "actions": []}, "ResponseMetadata": {"RequestId": "x", "HTTPStatusCode": 200}}"#
    )
    #expect(boto.name == "b")
    // Two payloads in one document: one would be dropped without a word.
    do {
      _ = try convert(
        #"{"rule": {"ruleName": "w", "sql": "SELECT 1 FROM 'a'"}, "topicRulePayload": {"sql": "SELECT 2 FROM 'b'"}}"#
      )
      Issue.record("two payloads imported")
    } catch {
      #expect(
        "\(error)"
          == "r.json:1:57: error: 'topicRulePayload' stands beside 'rule': a document holds one rule; import each on its own"
      )
    }
    // A description that is no string is refused, as `check` refuses it (it was dropped).
    for description in ["5", "null", "{}"] {
      do {
        _ = try convert(#"{"sql": "SELECT 1 FROM 'a'", "description": "# + description + "}")
        Issue.record("description \(description) imported")
      } catch {
        #expect("\(error)" == "r.json:1:45: error: 'description' must be a string")
      }
    }
    #expect(throws: AWSRuleImporter.ImportError.self) {
      try convert(
        "Type: AWS::IoT::TopicRule\nProperties:\n  TopicRulePayload:\n    Sql: SELECT * FROM 'a'\n    Actions: !If [C, [], []]\n",
        file: "i.yaml")
    }
  }

  @Test func cloudFormationYAMLShortForms() throws {
    let template = """
      Resources:
        Role:
          Type: AWS::IAM::Role
        StoreRule:
          Type: AWS::IoT::TopicRule
          Properties:
            TopicRulePayload:
              Sql: SELECT * FROM 'a'
              Actions:
                - Republish:
                    Topic: b
                    RoleArn: !GetAtt Role.Arn
      """
    let result = try AWSRuleImporter.convert(file: "template.yaml", bytes: Array(template.utf8))
    #expect(result.name == "StoreRule")
    #expect(
      try JSONReader.parse(result.json)
        == .object([
          "sql": .string("SELECT * FROM 'a'"), "awsIotSqlVersion": .string("2015-10-08"),
          "actions": .array([.object(["republish": .object(["topic": .string("b")])])]),
        ]), "\(result.json)")
    // A number or Boolean written for a String property is its text, as CloudFormation takes it
    // (`MessageExpiry: 3600` was copied as a number, which `check` refused); Qos stays a number.
    let unquoted = """
      TopicRulePayload:
        Sql: SELECT * FROM 'a'
        AwsIotSqlVersion: 2016-03-23
        Actions:
          - Republish:
              Topic: b
              Qos: 1
              Headers:
                MessageExpiry: 3600
          - Kafka:
              DestinationArn: arn:x
              Topic: t
              Partition: 0
              ClientProperties:
                bootstrap.servers: 127.0.0.1:9092
                acks: 1
                enable.idempotence: true
      """
    let strings = try AWSRuleImporter.convert(file: "u.yaml", bytes: Array(unquoted.utf8))
    for member in [
      #""qos": 1"#, #""messageExpiry": "3600""#, #""partition": "0""#, #""acks": "1""#,
      #""enable.idempotence": "true""#,
    ] {
      #expect(strings.json.contains(member), "\(member) in \(strings.json)")
    }
    let computed = """
      TopicRulePayload:
        Sql: !Sub "SELECT * FROM '${Topic}'"
        Actions: []
      """
    #expect {
      try AWSRuleImporter.convert(file: "t.yaml", bytes: Array(computed.utf8))
    } throws: {
      "\($0)".contains("t.yaml:2:8: error: 'Sql' is Fn::Sub, a CloudFormation function")
    }
    // Its aliases expand under the rule files' budget, short forms or not (a bomb of 10^8 values
    // took the memory of the import).
    let bomb =
      "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
      + (1...8).map {
        "l\($0): &l\($0) [\(Array(repeating: $0 == 1 ? "*a" : "*l\($0 - 1)", count: 10).joined(separator: ", "))]\n"
      }
      .joined()
      + "Sql: !Sub \"SELECT * FROM 'a'\"\n"
    #expect {
      try AWSRuleImporter.convert(file: "bomb.yaml", bytes: Array(bomb.utf8))
    } throws: {
      "\($0)".contains("values and bytes of text once its aliases are expanded")
    }
    // A rule file is no template: the tag stays refused there.
    #expect(throws: RuleSyntaxError.self) { try RuleDocument.parseYAML(Array(computed.utf8)) }
  }

  /// `aws iot get-topic-rule --output yaml` writes YAML: read by the file's extension, or, on
  /// standard input, when the text is no JSON but a YAML mapping.
  @Test func awsCLIYAMLOutput() throws {
    let yaml = """
      ruleArn: arn:aws:iot:us-east-1:123456789012:rule/MyRule
      rule:
        ruleName: MyRule
        sql: SELECT * FROM 'a/#'
        awsIotSqlVersion: '2016-03-23'
        ruleDisabled: false
        actions:
        - republish:
            topic: out/${topic(2)}
            qos: 1
            roleArn: arn:aws:iam::123456789012:role/r

      """
    for file in ["rule.yaml", "stdin"] {
      let result = try AWSRuleImporter.convert(file: file, bytes: Array(yaml.utf8))
      #expect(result.name == "MyRule")
      #expect(
        try JSONReader.parse(result.json)
          == .object([
            "sql": .string("SELECT * FROM 'a/#'"), "awsIotSqlVersion": .string("2016-03-23"),
            "ruleDisabled": .bool(false),
            "actions": .array([
              .object(["republish": .object(["topic": .string("out/${topic(2)}"), "qos": .int(1)])])
            ]),
          ]), "\(result.json)")
    }
    // A file named .json is JSON: broken, it says where, not read as YAML without a word.
    #expect {
      try AWSRuleImporter.convert(file: "rule.json", bytes: Array(yaml.utf8))
    } throws: { error in
      (error as? AWSRuleImporter.ImportError)?.description.hasPrefix("rule.json:1:1: error:") == true
    }
    // Text that is neither says what is wrong with it as JSON.
    #expect {
      try AWSRuleImporter.convert(file: "stdin", bytes: Array("{\"sql\": ".utf8))
    } throws: { error in
      (error as? AWSRuleImporter.ImportError)?.description.hasPrefix("stdin:1:") == true
    }
  }

  @Test("a bare payload takes the file's base name; input that is not a rule says where")
  func barePayloadAndErrors() throws {
    let result = try AWSRuleImporter.convert(
      file: "/tmp/my_rule.json", bytes: Array(#"{"sql": "SELECT * FROM 'a'", "actions": []}"#.utf8))
    #expect(result.name == "my_rule")
    #expect(throws: AWSRuleImporter.ImportError.self) {
      try AWSRuleImporter.convert(file: "bad.json", bytes: Array(#"{"rule": {"actions": []}}"#.utf8))
    }
    // list-topic-rules output lists names only: said as such, with what to run instead.
    #expect {
      try AWSRuleImporter.convert(
        file: "list.json", bytes: Array(#"{"rules": [{"ruleName": "a", "topicPattern": "t"}]}"#.utf8))
    } throws: { error in
      (error as? AWSRuleImporter.ImportError)?.description.contains(
        "this is list-topic-rules output, which holds each rule's name but not its SQL or actions") == true
    }
    // A ruleName that is no string is refused, not replaced by the file's name without a word.
    #expect {
      try AWSRuleImporter.convert(
        file: "n.json",
        bytes: Array(
          #"{"ruleName": 5, "topicRulePayload": {"sql": "SELECT * FROM 'a'", "actions": []}}"#.utf8))
    } throws: { error in
      (error as? AWSRuleImporter.ImportError)?.description
        == "n.json:1:14: error: 'ruleName' must be a string, not a number (or give the name with --name)"
    }
    // Fields of the wrong type are errors where they are, not dropped or taken as omitted: a
    // disabled rule must not come out enabled.
    for (field, value, message) in [
      ("ruleDisabled", #""true""#, "'ruleDisabled' must be true or false"),
      ("awsIotSqlVersion", "20160323", "'awsIotSqlVersion' must be a string"),
    ] {
      do {
        _ = try AWSRuleImporter.convert(
          file: "r.json",
          bytes: Array(#"{"sql": "SELECT * FROM 'a'", "\#(field)": \#(value), "actions": []}"#.utf8))
        Issue.record("\(field) \(value) accepted")
      } catch {
        #expect(error.description.contains(message), "\(error)")
      }
    }
    // Both wrong types are said, in file order.
    do {
      _ = try AWSRuleImporter.convert(
        file: "r.json",
        bytes: Array(
          #"{"sql": "SELECT * FROM 'a'", "ruleDisabled": 1, "awsIotSqlVersion": 2, "actions": []}"#.utf8))
      Issue.record("both accepted")
    } catch {
      #expect(
        error.description
          == "r.json:1:46: error: 'ruleDisabled' must be true or false\n"
          + "r.json:1:69: error: 'awsIotSqlVersion' must be a string such as \"2016-03-23\"", "\(error)")
    }
    // A misspelt rule field would change the rule without a word (`ruleDisable`: enabled): it needs
    // the user (exit 1), with the field meant, and is kept so that `check` refuses the rule until
    // it is corrected (left out, the rule passed enabled); a field AWS has and this engine not stays
    // a note.
    let misspelt = try AWSRuleImporter.convert(
      file: "r.json",
      bytes: Array(#"{"sql": "SELECT * FROM 'a'", "ruleDisable": true, "tags": [], "actions": []}"#.utf8))
    #expect(
      misspelt.actionRequired == [
        "rule field 'ruleDisable' is no AWS rule field; did you mean 'ruleDisabled'?; kept as written, so that check refuses the rule until you correct it"
      ], "\(misspelt.actionRequired)")
    #expect(
      misspelt.json.contains(#""ruleDisable": true"#) || misspelt.json.contains(#""ruleDisable":true"#),
      "\(misspelt.json)")
    #expect(
      misspelt.notes.contains("rule field 'tags' has no equivalent here: not imported"), "\(misspelt.notes)")
    // `enabled: false` would be dropped and the rule written enabled: kept, so that check refuses it.
    // (A field that only contains the letters, `cacheable`, is a note as any other.)
    let cacheable = try AWSRuleImporter.convert(
      file: "r.json", bytes: Array(#"{"sql": "SELECT * FROM 'a'", "cacheable": true, "actions": []}"#.utf8))
    #expect(cacheable.actionRequired.isEmpty, "\(cacheable.actionRequired)")
    let enabled = try AWSRuleImporter.convert(
      file: "r.json", bytes: Array(#"{"sql": "SELECT * FROM 'a'", "enabled": false, "actions": []}"#.utf8))
    #expect(
      enabled.actionRequired == [
        "rule field 'enabled' is no AWS rule field; AWS turns a rule off with 'ruleDisabled'; kept as written, so that check refuses the rule until you correct it"
      ], "\(enabled.actionRequired)")
    // A bad name from the file says how to give one.
    do {
      _ = try AWSRuleImporter.convert(
        file: "my-rule.json", bytes: Array(#"{"sql": "SELECT * FROM 'a'"}"#.utf8))
      Issue.record("my-rule accepted")
    } catch {
      #expect(
        error.description
          == "my-rule.json: error: invalid rule name 'my-rule': it must match [a-zA-Z0-9_]{1,128} (the name comes from the file name: give one with --name)",
        "\(error)")
    }
    // A bad name in the document is an error at its place; one given with --name says so.
    do {
      _ = try AWSRuleImporter.convert(
        file: "r.json", bytes: Array(#"{"rule": {"ruleName": "../evil", "sql": "SELECT * FROM 'a'"}}"#.utf8))
      Issue.record("../evil accepted")
    } catch {
      #expect(error.description.hasPrefix("r.json:1:23: error: invalid rule name '../evil'"), "\(error)")
    }
    do {
      _ = try AWSRuleImporter.convert(
        file: "r.json", bytes: Array(#"{"sql": "SELECT * FROM 'a'"}"#.utf8), name: "a b")
      Issue.record("a b accepted")
    } catch {
      #expect(error.description.hasPrefix("iotrules: error: --name: invalid rule name 'a b'"), "\(error)")
    }
  }
}
