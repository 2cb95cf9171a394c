/// The families of the catalogue, concatenated in this order. A new family adds its file and one
/// entry here.
enum FunctionFamilies {
  static let all: [FunctionSpec] =
    ContextFunctions.specs
    + MathFunctions.specs
    + BitwiseFunctions.specs
    + StringFunctions.specs
    + CollectionFunctions.specs
    + EncodingFunctions.specs
    + ServiceFunctions.specs
    + RegexFunctions.specs
    + TimeFunctions.specs
    + HashFunctions.specs
}
