extension Array {
  /// A copy whose storage holds exactly its elements, without the slack that growing by appends
  /// leaves (up to half the capacity). For values that live as long as a rule does: with 10,000
  /// rules loaded the slack of their programs and tries is several megabytes.
  package func compacted() -> [Element] {
    guard capacity > count else { return self }
    return [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
      initialized = buffer.initialize(fromContentsOf: self)
    }
  }
}
