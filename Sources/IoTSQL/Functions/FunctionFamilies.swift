/// The families of the catalogue, concatenated in this order. A new family adds its file and one
/// entry here.
enum FunctionFamilies {
  static let all: [FunctionSpec] =
    [] + RegexFunctions.specs + TimeFunctions.specs + HashFunctions.specs
}
