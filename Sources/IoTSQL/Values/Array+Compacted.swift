extension Array {
  /// A copy whose storage holds exactly its elements, without the slack that growing by appends
  /// leaves (up to half the capacity). For values that live as long as a rule does: with 10,000
  /// rules loaded the slack of their programs and tries is several megabytes. Slack under an eighth
  /// is kept: copying a large array to save it would cost more at that moment than it saves after
  /// (the 1.4 MB node array of a 10,000-rule trie fills 92% of its storage).
  package func compacted() -> [Element] {
    guard capacity - count > capacity / 8 else { return self }
    return [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
      initialized = buffer.initialize(fromContentsOf: self)
    }
  }
}
