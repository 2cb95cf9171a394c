import Foundation
import Synchronization

/// Version 4 UUIDs from the kernel's generator (the `getrandom` system call, no file descriptor).
/// Foundation's `UUID()` read its randomness through a descriptor and, while the process was out of
/// them, gave `00000000-0000-4000-8000-000000000000` to every call: `newuuid()` and every error
/// record's trace id were one and the same. The bytes are drawn 512 at a time (a system call per
/// 32 UUIDs, not two per UUID: `newuuid()` took 2.7 µs a message, most of it in those calls).
public enum RandomUUID {
  /// A new version 4 (random) UUID in lower case: `8-4-4-4-12` hexadecimal digits.
  public static func string() -> String {
    let (high, low) = pool.withLock { $0.take() }
    return string(high: high, low: low)
  }

  private static let pool = Mutex(RandomWords())

  /// Random words from the kernel, handed out once each (a word is zeroed once taken).
  struct RandomWords: ~Copyable {
    private var words = [UInt64](repeating: 0, count: 64)
    private var next = 64

    /// The next two words, refilling from the kernel when none are left.
    mutating func take() -> (UInt64, UInt64) {
      if next + 2 > words.count {
        refill()
        next = 0
      }
      defer {
        words[next] = 0
        words[next + 1] = 0
        next += 2
      }
      return (words[next], words[next + 1])
    }

    private mutating func refill() {
      words.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, $0.count) }
    }
  }

  /// The UUID of 128 bits, `high` first, with the version (4) and variant (RFC 9562) bits set.
  static func string(high: UInt64, low: UInt64) -> String {
    let high = (high & ~0xF000) | 0x4000
    let low = (low & ~(0xC000 << 48)) | (0x8000 << 48)
    return String(unsafeUninitializedCapacity: 36) { buffer in
      var position = 0
      for word in [high, low] {
        for index in 0..<16 {
          if position == 8 || position == 13 || position == 18 || position == 23 {
            buffer[position] = UInt8(ascii: "-")
            position += 1
          }
          let digit = UInt8((word >> UInt64(60 - 4 * index)) & 0xF)
          buffer[position] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
          position += 1
        }
      }
      return position
    }
  }
}

/// What `newuuid()` and `rand()` give where a run is pinned (a case's or an `eval --batch`
/// request's `context`: `"newuuid": "..."`, `"rand": 0.25`) or must be the same every time (a rule
/// test's case, `repeatable`). A pinned function gives its pin on every call; one not pinned is
/// random, or, when repeatable, gives a sequence that starts over with each instance:
/// `newuuid()` the UUIDs `00000000-0000-4000-8000-000000000001`, `...002` and so on, `rand()` the
/// doubles of a fixed seed (SplitMix64), in call order.
public final class PinnedRandomness: Sendable {
  /// What every `newuuid()` call gives, when pinned.
  public let uuid: String?
  /// What every `rand()` call gives, when pinned: in [0, 1).
  public let rand: Double?
  /// Whether a function not pinned gives its fixed sequence rather than random values.
  public let repeatable: Bool
  private let state = Mutex<(uuids: UInt64, seed: UInt64)>((0, 0))

  /// Creates the pins given; the other function random, or repeatable.
  public init(uuid: String? = nil, rand: Double? = nil, repeatable: Bool = false) {
    self.uuid = uuid
    self.rand = rand
    self.repeatable = repeatable
  }

  /// The same pins, repeatable, with the sequences started over (a rule test's run of a case).
  public func restartedRepeatable() -> PinnedRandomness {
    PinnedRandomness(uuid: uuid, rand: rand, repeatable: true)
  }

  /// The next `newuuid()`.
  public func nextUUID() -> String {
    if let uuid { return uuid }
    guard repeatable else { return RandomUUID.string() }
    let count = state.withLock {
      $0.uuids += 1
      return $0.uuids
    }
    return RandomUUID.string(high: 0, low: count)
  }

  /// The next `rand()`: SplitMix64's next word, its top 53 bits as a double in [0, 1).
  public func nextDouble() -> Double {
    if let rand { return rand }
    guard repeatable else { return Double.random(in: 0..<1) }
    let word = state.withLock {
      $0.seed &+= 0x9E37_79B9_7F4A_7C15
      var mixed = $0.seed
      mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
      mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
      return mixed ^ (mixed >> 31)
    }
    return Double(word >> 11) * 0x1p-53
  }
}
