/// A value's fields in one box shared by its copies (copy on write): a copy costs one reference
/// count, and a write copies the box only when it is shared. `EvaluationContext` and `Message` keep
/// their fields this way: the VM copies a context into every function call, the dispatcher copies a
/// message into every action's queue.
package struct SharedFields<Fields> {
  final class Box {
    // Only the owner of a uniquely referenced box writes, so no access to it can overlap: the
    // dynamic exclusivity check a class property gets would cost a thread-local lookup per read.
    @exclusivity(unchecked) var fields: Fields
    init(_ fields: Fields) { self.fields = fields }
  }

  private var box: Box

  /// Boxes `fields`.
  package init(_ fields: Fields) {
    box = Box(fields)
  }

  /// The fields; writing through it first copies a shared box. Reading borrows them: reading one
  /// field copies that field, not every field of the box.
  package var fields: Fields {
    _read { yield box.fields }
    _modify {
      if !isKnownUniquelyReferenced(&box) { box = Box(box.fields) }
      yield &box.fields
    }
  }
}

/// Copies share the box across threads only to read it; a write first makes the box unique.
extension SharedFields: @unchecked Sendable where Fields: Sendable {}
