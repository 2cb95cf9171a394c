// Bit-exact re-implementation of a subset of Java's `StrictMath`.
//
// Java specifies that `StrictMath` follows the algorithms of fdlibm 5.3
// ("Freely Distributable LIBM", Sun Microsystems, 1993), and
// `java.lang.Math` delegates asin/acos/atan/atan2/sinh/cosh/tanh to
// `StrictMath` on every platform. The platform libm (glibc) uses different
// algorithms and disagrees in the last bit for a small share of arguments,
// so rule results would drift from what a JVM produces.
//
// The polynomial coefficients, split constants and branch thresholds below
// are those of fdlibm (its license permits free use, copying and
// modification with the copyright notice retained:
// "Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
//  Developed at SunSoft, a Sun Microsystems, Inc. business. Permission to
//  use, copy, modify, and distribute this software is freely granted,
//  provided that this notice is preserved.").
//
// Implementation notes:
// * Every constant is written as a hexadecimal float literal so it is exact.
// * Thresholds are compared on the upper 32 bits of the IEEE-754 encoding,
//   exactly like fdlibm, because that determines which branch (and thus
//   which rounding sequence) a value takes.
// * The order of every floating-point operation matters. Swift never fuses
//   `a * b + c` into an FMA on its own; do not introduce `addingProduct`,
//   `fma`, or algebraic "simplifications" here.

/// Java `StrictMath`-compatible elementary functions (fdlibm 5.3 algorithms).
enum JavaMath {

  // MARK: - Bit access

  /// Upper 32 bits of the encoding (sign, exponent, top 20 mantissa bits),
  /// as a signed integer, so `< 0` means the sign bit is set.
  @inline(__always)
  private static func highWord(_ x: Double) -> Int32 {
    Int32(truncatingIfNeeded: x.bitPattern >> 32)
  }

  /// Lower 32 bits of the encoding.
  @inline(__always)
  private static func lowWord(_ x: Double) -> UInt32 {
    UInt32(truncatingIfNeeded: x.bitPattern)
  }

  /// Builds a double from its upper and lower 32-bit halves.
  @inline(__always)
  private static func fromWords(high: UInt32, low: UInt32) -> Double {
    Double(bitPattern: UInt64(high) << 32 | UInt64(low))
  }

  /// `x` with its lower 32 bits cleared (a value with a short mantissa
  /// whose square is exact).
  @inline(__always)
  private static func truncatedToHighWord(_ x: Double) -> Double {
    Double(bitPattern: x.bitPattern & 0xFFFF_FFFF_0000_0000)
  }

  /// Adds `k` to the binary exponent field of `y` (integer add on the
  /// encoding, like fdlibm's "add k to the high word" idiom).
  @inline(__always)
  private static func addingToExponent(_ y: Double, _ k: Int) -> Double {
    Double(bitPattern: y.bitPattern &+ UInt64(bitPattern: Int64(k) << 52))
  }

  // MARK: - Shared constants

  private static let huge = 0x1.7e43c8800759cp996  // 1.0e300
  private static let tiny = 0x1.56e1fc2f8f359p-997  // 1.0e-300

  private static let piHi = 0x1.921fb54442d18p1  // pi rounded
  private static let piLo = 0x1.1a62633145c07p-53  // pi - piHi
  private static let halfPiHi = 0x1.921fb54442d18p0  // pi/2 rounded
  private static let halfPiLo = 0x1.1a62633145c07p-54  // pi/2 - halfPiHi
  private static let quarterPiHi = 0x1.921fb54442d18p-1

  private static let ln2Hi = 0x1.62e42feep-1  // ln2, 32 significant bits
  private static let ln2Lo = 0x1.a39ef35793c76p-33  // ln2 - ln2Hi
  private static let invLn2 = 0x1.71547652b82fep0  // 1/ln2

  /// Largest argument for which exp(x) is finite (~709.78).
  private static let expOverflowThreshold = 0x1.62e42fefa39efp9
  /// Below this exp(x) underflows to zero (~-745.13).
  private static let expUnderflowThreshold = -0x1.74910d52d3051p9
  private static let twoToMinus1000 = 0x1p-1000

  // MARK: - asin / acos shared rational approximation

  // asin(x) = x + x^3 * R(x^2) on [0, 0.5] with R = P/Q.
  private static let pS0 = 0x1.5555555555555p-3
  private static let pS1 = -0x1.4d61203eb6f7dp-2
  private static let pS2 = 0x1.9c1550e884455p-3
  private static let pS3 = -0x1.48228b5688f3bp-5
  private static let pS4 = 0x1.9efe07501b288p-11
  private static let pS5 = 0x1.23de10dfdf709p-15
  private static let qS1 = -0x1.33a271c8a2d4bp1
  private static let qS2 = 0x1.02ae59c598ac8p1
  private static let qS3 = -0x1.6066c1b8d0159p-1
  private static let qS4 = 0x1.3b8c5b12e9282p-4

  /// The ratio P(t)/Q(t) used by asin and acos (t = x^2 or (1-|x|)/2).
  @inline(__always)
  private static func asinRatio(_ t: Double) -> Double {
    let p = t * (pS0 + t * (pS1 + t * (pS2 + t * (pS3 + t * (pS4 + t * pS5)))))
    let q = 1.0 + t * (qS1 + t * (qS2 + t * (qS3 + t * qS4)))
    return p / q
  }

  // MARK: - asin

  /// Arc sine of `x` in radians, in [-pi/2, pi/2]; NaN when |x| > 1.
  ///
  /// Matches Java's `StrictMath.asin` (and therefore `Math.asin`) bit for bit.
  static func asin(_ x: Double) -> Double {
    let hx = highWord(x)
    let ix = hx & 0x7fff_ffff

    if ix >= 0x3ff0_0000 {
      // |x| >= 1 or NaN.
      if ix == 0x3ff0_0000 && lowWord(x) == 0 {
        return x * halfPiHi + x * halfPiLo  // asin(+-1) = +-pi/2
      }
      return (x - x) / (x - x)  // NaN
    }

    if ix < 0x3fe0_0000 {
      // |x| < 0.5
      if ix < 0x3e40_0000 {
        return x  // |x| < 2^-27: asin(x) = x
      }
      let t = x * x
      return x + x * asinRatio(t)
    }

    // 0.5 <= |x| < 1: asin(x) = pi/2 - 2*asin(sqrt((1-|x|)/2)).
    let w = 1.0 - abs(x)
    let t = w * 0.5
    let r = asinRatio(t)
    let s = t.squareRoot()
    let result: Double
    if ix >= 0x3fef_3333 {
      // |x| > 0.975: the plain form is accurate enough.
      result = halfPiHi - (2.0 * (s + s * r) - halfPiLo)
    } else {
      // Split s = f + c with f exact in 32 bits to keep extra precision.
      let f = truncatedToHighWord(s)
      let c = (t - f * f) / (s + f)
      let p = 2.0 * s * r - (halfPiLo - 2.0 * c)
      let q = quarterPiHi - 2.0 * f
      result = quarterPiHi - (p - q)
    }
    return hx > 0 ? result : -result
  }

  // MARK: - acos

  /// Arc cosine of `x` in radians, in [0, pi]; NaN when |x| > 1.
  ///
  /// Matches Java's `StrictMath.acos` (and therefore `Math.acos`) bit for bit.
  static func acos(_ x: Double) -> Double {
    let hx = highWord(x)
    let ix = hx & 0x7fff_ffff

    if ix >= 0x3ff0_0000 {
      // |x| >= 1 or NaN.
      if ix == 0x3ff0_0000 && lowWord(x) == 0 {
        return hx > 0 ? 0.0 : piHi + 2.0 * halfPiLo
      }
      return (x - x) / (x - x)
    }

    if ix < 0x3fe0_0000 {
      // |x| < 0.5: acos(x) = pi/2 - asin(x).
      if ix <= 0x3c60_0000 {
        return halfPiHi + halfPiLo  // |x| <= 2^-57
      }
      let r = asinRatio(x * x)
      return halfPiHi - (x - (halfPiLo - x * r))
    }

    if hx < 0 {
      // -1 < x <= -0.5: acos(x) = pi - 2*asin(sqrt((1+x)/2)).
      let z = (1.0 + x) * 0.5
      let r = asinRatio(z)
      let s = z.squareRoot()
      let w = r * s - halfPiLo
      return piHi - 2.0 * (s + w)
    }

    // 0.5 <= x < 1: acos(x) = 2*asin(sqrt((1-x)/2)), with s split as f + c.
    let z = (1.0 - x) * 0.5
    let s = z.squareRoot()
    let f = truncatedToHighWord(s)
    let c = (z - f * f) / (s + f)
    let r = asinRatio(z)
    let w = r * s + c
    return 2.0 * (f + w)
  }

  // MARK: - atan

  /// atan of the reduction breakpoints 0.5, 1, 1.5 and infinity, split in
  /// a rounded head and a tail.
  private static let atanHi: (Double, Double, Double, Double) = (
    0x1.dac670561bb4fp-2,
    0x1.921fb54442d18p-1,
    0x1.f730bd281f69bp-1,
    0x1.921fb54442d18p0
  )
  private static let atanLo: (Double, Double, Double, Double) = (
    0x1.a2b7f222f65e2p-56,
    0x1.1a62633145c07p-55,
    0x1.007887af0cbbdp-56,
    0x1.1a62633145c07p-54
  )

  // Coefficients of atan(x) ~ x - x^3 * (aT0 + aT1 x^2 + ... + aT10 x^20).
  private static let aT0 = 0x1.555555555550dp-2
  private static let aT1 = -0x1.999999998ebc4p-3
  private static let aT2 = 0x1.24924920083ffp-3
  private static let aT3 = -0x1.c71c6fe231671p-4
  private static let aT4 = 0x1.745cdc54c206ep-4
  private static let aT5 = -0x1.3b0f2af749a6dp-4
  private static let aT6 = 0x1.10d66a0d03d51p-4
  private static let aT7 = -0x1.dde2d52defd9ap-5
  private static let aT8 = 0x1.97b4b24760debp-5
  private static let aT9 = -0x1.2b4442c6a6c2fp-5
  private static let aT10 = 0x1.0ad3ae322da11p-6

  /// Arc tangent of `x` in radians, in [-pi/2, pi/2].
  ///
  /// Matches Java's `StrictMath.atan` (and therefore `Math.atan`) bit for bit.
  static func atan(_ x: Double) -> Double {
    let hx = highWord(x)
    let ix = hx & 0x7fff_ffff

    if ix >= 0x4410_0000 {
      // |x| >= 2^66, infinity or NaN.
      if x.isNaN { return x + x }
      return hx > 0 ? atanHi.3 + atanLo.3 : -atanHi.3 - atanLo.3
    }

    // Reduce to a small argument `v`; `segment` selects the breakpoint
    // whose arctangent is added back (nil: no reduction).
    var v = x
    var segment: Int? = nil
    if ix < 0x3fdc_0000 {
      // |x| < 7/16
      if ix < 0x3e20_0000 {
        return x  // |x| < 2^-29
      }
    } else {
      let a = abs(x)
      if ix < 0x3ff3_0000 {
        if ix < 0x3fe6_0000 {
          // 7/16 <= |x| < 11/16: around 0.5
          segment = 0
          v = (2.0 * a - 1.0) / (2.0 + a)
        } else {
          // 11/16 <= |x| < 19/16: around 1
          segment = 1
          v = (a - 1.0) / (a + 1.0)
        }
      } else if ix < 0x4003_8000 {
        // 19/16 <= |x| < 39/16: around 1.5
        segment = 2
        v = (a - 1.5) / (1.0 + 1.5 * a)
      } else {
        // 39/16 <= |x| < 2^66: atan(x) = pi/2 - atan(1/x)
        segment = 3
        v = -1.0 / a
      }
    }

    // Odd/even split of the polynomial in z = v^2.
    let z = v * v
    let w = z * z
    let s1 = z * (aT0 + w * (aT2 + w * (aT4 + w * (aT6 + w * (aT8 + w * aT10)))))
    let s2 = w * (aT1 + w * (aT3 + w * (aT5 + w * (aT7 + w * aT9))))

    guard let segment else {
      return v - v * (s1 + s2)
    }
    let hi: Double
    let lo: Double
    switch segment {
    case 0: (hi, lo) = (atanHi.0, atanLo.0)
    case 1: (hi, lo) = (atanHi.1, atanLo.1)
    case 2: (hi, lo) = (atanHi.2, atanLo.2)
    default: (hi, lo) = (atanHi.3, atanLo.3)
    }
    let result = hi - ((v * (s1 + s2) - lo) - v)
    return hx < 0 ? -result : result
  }

  // MARK: - atan2

  /// Angle in radians, in [-pi, pi], of the point (`x`, `y`) — the
  /// two-argument arc tangent of `y / x` using both signs to pick the quadrant.
  ///
  /// Matches Java's `StrictMath.atan2(y, x)` (and therefore `Math.atan2`)
  /// bit for bit, including all signed-zero and infinity cases.
  static func atan2(_ y: Double, _ x: Double) -> Double {
    if x.isNaN || y.isNaN {
      return x + y
    }
    if x == 1.0 {
      return atan(y)
    }
    let hx = highWord(x)
    let hy = highWord(y)
    let ix = hx & 0x7fff_ffff
    let iy = hy & 0x7fff_ffff
    let yNegative = hy < 0
    let xNegative = hx < 0

    if y == 0 {
      // atan2(+-0, +anything) = +-0; atan2(+-0, -anything) = +-pi
      if !xNegative { return y }
      return yNegative ? -piHi - tiny : piHi + tiny
    }
    if x == 0 {
      return yNegative ? -halfPiHi - tiny : halfPiHi + tiny
    }
    if x.isInfinite {
      if y.isInfinite {
        switch (yNegative, xNegative) {
        case (false, false): return quarterPiHi + tiny
        case (true, false): return -quarterPiHi - tiny
        case (false, true): return 3.0 * quarterPiHi + tiny
        case (true, true): return -3.0 * quarterPiHi - tiny
        }
      }
      switch (yNegative, xNegative) {
      case (false, false): return 0.0
      case (true, false): return -0.0
      case (false, true): return piHi + tiny
      case (true, true): return -piHi - tiny
      }
    }
    if y.isInfinite {
      return yNegative ? -halfPiHi - tiny : halfPiHi + tiny
    }

    // Both finite and non-zero. Estimate log2|y/x| from the exponents.
    let k = (iy - ix) >> 20
    let z: Double
    if k > 60 {
      z = halfPiHi + 0.5 * piLo  // |y/x| > 2^60
    } else if xNegative && k < -60 {
      z = 0.0  // |y/x| < 2^-60, x < 0
    } else {
      z = atan(abs(y / x))
    }
    switch (yNegative, xNegative) {
    case (false, false): return z
    case (true, false): return -z
    case (false, true): return piHi - (z - piLo)
    case (true, true): return (z - piLo) - piHi
    }
  }

  // MARK: - exp (internal helper, as StrictMath.exp)

  // Remez coefficients for the rational approximation of exp on
  // [-ln2/2, ln2/2].
  private static let eP1 = 0x1.555555555553ep-3
  private static let eP2 = -0x1.6c16c16bebd93p-9
  private static let eP3 = 0x1.1566aaf25de2cp-14
  private static let eP4 = -0x1.bbd41c5d26bf1p-20
  private static let eP5 = 0x1.6376972bea4d0p-25

  /// `x` (|x| > ln2/2, `hx` the upper word of |x|) as k·ln2 + (hi - lo), the reduction fdlibm's
  /// exp and expm1 share: k = ±1 below 1.5·ln2, else the nearest whole number to x/ln2.
  private static func reducedByLn2(_ x: Double, highWord hx: Int32, negative: Bool) -> (
    hi: Double, lo: Double, k: Int
  ) {
    if hx < 0x3ff0_a2b2 {
      return negative ? (x + ln2Hi, -ln2Lo, -1) : (x - ln2Hi, ln2Lo, 1)
    }
    let k = Int(invLn2 * x + (negative ? -0.5 : 0.5))
    let t = Double(k)
    return (x - t * ln2Hi, t * ln2Lo, k)  // x - t*ln2Hi is exact
  }

  /// e raised to `x`.
  ///
  /// Matches Java's `StrictMath.exp` bit for bit; used by `sinh`/`cosh`.
  static func exp(_ x: Double) -> Double {
    let hxSigned = highWord(x)
    let negative = hxSigned < 0
    let hx = hxSigned & 0x7fff_ffff

    if hx >= 0x4086_2e42 {
      // |x| >= ~709.78, infinity or NaN.
      if hx >= 0x7ff0_0000 {
        if x.isNaN { return x + x }
        return negative ? 0.0 : x
      }
      if x > expOverflowThreshold { return huge * huge }
      if x < expUnderflowThreshold { return twoToMinus1000 * twoToMinus1000 }
    }

    // Reduce: x = k*ln2 + r with |r| <= ln2/2, r carried as hi - lo.
    var r = x
    var hi = 0.0
    var lo = 0.0
    var k = 0
    if hx > 0x3fd6_2e42 {
      // |x| > ln2/2
      (hi, lo, k) = reducedByLn2(x, highWord: hx, negative: negative)
      r = hi - lo
    } else if hx < 0x3e30_0000 {
      return 1.0 + x  // |x| < 2^-28
    }

    let t = r * r
    let c = r - t * (eP1 + t * (eP2 + t * (eP3 + t * (eP4 + t * eP5))))
    if k == 0 {
      return 1.0 - ((r * c) / (c - 2.0) - r)
    }
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    if k >= -1021 {
      return addingToExponent(y, k)
    }
    return addingToExponent(y, k + 1000) * twoToMinus1000
  }

  // MARK: - expm1 (internal helper, as StrictMath.expm1)

  // Scaled coefficients of the rational approximation of expm1 on
  // [-ln2/2, ln2/2].
  private static let q1 = -0x1.11111111110f4p-5
  private static let q2 = 0x1.a01a019fe5585p-10
  private static let q3 = -0x1.4ce199eaadbb7p-14
  private static let q4 = 0x1.0cfca86e65239p-18
  private static let q5 = -0x1.afdb76e09c32dp-23

  /// e raised to `x`, minus one, accurate also for tiny `x`.
  ///
  /// Matches Java's `StrictMath.expm1` bit for bit; used by `sinh`, `cosh`
  /// and `tanh`.
  static func expm1(_ x: Double) -> Double {
    let hxSigned = highWord(x)
    let negative = hxSigned < 0
    let hx = hxSigned & 0x7fff_ffff

    if hx >= 0x4043_687a {
      // |x| >= 56*ln2, infinity or NaN.
      if hx >= 0x4086_2e42 {
        if hx >= 0x7ff0_0000 {
          if x.isNaN { return x + x }
          return negative ? -1.0 : x
        }
        if x > expOverflowThreshold { return huge * huge }
      }
      if negative {
        return tiny - 1.0  // -1 (inexact)
      }
    }

    // Reduce: x = k*ln2 + r, r carried as (hi - lo) with correction c.
    var r = x
    var c = 0.0
    var k = 0
    if hx > 0x3fd6_2e42 {
      // |x| > ln2/2
      let (hi, lo, reducedK) = reducedByLn2(x, highWord: hx, negative: negative)
      k = reducedK
      r = hi - lo
      c = (hi - r) - lo
    } else if hx < 0x3c90_0000 {
      return x  // |x| < 2^-54
    }

    let hfx = 0.5 * r
    let hxs = r * hfx
    let r1 = 1.0 + hxs * (q1 + hxs * (q2 + hxs * (q3 + hxs * (q4 + hxs * q5))))
    let t = 3.0 - r1 * hfx
    var e = hxs * ((r1 - t) / (6.0 - r * t))
    if k == 0 {
      return r - (r * e - hxs)
    }
    e = r * (e - c) - c
    e -= hxs
    if k == -1 {
      return 0.5 * (r - e) - 0.5
    }
    if k == 1 {
      if r < -0.25 {
        return -2.0 * (e - (r + 0.5))
      }
      return 1.0 + 2.0 * (r - e)
    }
    if k <= -2 || k > 56 {
      // 2^k dominates; form exp(x) then subtract one.
      let y = 1.0 - (e - r)
      return addingToExponent(y, k) - 1.0
    }
    if k < 20 {
      let t = fromWords(high: UInt32(0x3ff0_0000 - (0x20_0000 >> k)), low: 0)  // 1 - 2^-k
      let y = t - (e - r)
      return addingToExponent(y, k)
    }
    let t2 = fromWords(high: UInt32(0x3ff - k) << 20, low: 0)  // 2^-k
    var y = r - (e + t2)
    y += 1.0
    return addingToExponent(y, k)
  }

  // MARK: - Hyperbolic functions

  /// Largest |x| with a finite sinh/cosh (~710.4758600739439), high word.
  private static let hyperbolicOverflowHigh: Int32 = 0x4086_33ce
  private static let hyperbolicOverflowLow: UInt32 = 0x8fb9_f87d
  private static let shuge = 0x1.c7b1f3cac7433p1019  // 1.0e307

  /// Hyperbolic sine of `x`, (e^x - e^-x) / 2.
  ///
  /// Matches Java's `StrictMath.sinh` (and therefore `Math.sinh`) bit for bit.
  static func sinh(_ x: Double) -> Double {
    let jx = highWord(x)
    let ix = jx & 0x7fff_ffff
    if ix >= 0x7ff0_0000 {
      return x + x  // +-inf or NaN
    }
    let h = jx < 0 ? -0.5 : 0.5
    let a = abs(x)

    if ix < 0x4036_0000 {
      // |x| < 22: sign(x) * (E + E/(E+1)) / 2 with E = expm1(|x|)
      if ix < 0x3e30_0000 {
        return x  // |x| < 2^-28
      }
      let t = expm1(a)
      if ix < 0x3ff0_0000 {
        return h * (2.0 * t - t * t / (t + 1.0))
      }
      return h * (t + t / (t + 1.0))
    }
    if ix < 0x4086_2e42 {
      return h * exp(a)  // 22 <= |x| < ~709.78
    }
    if ix < hyperbolicOverflowHigh
      || (ix == hyperbolicOverflowHigh && lowWord(x) <= hyperbolicOverflowLow)
    {
      // exp(|x|) alone would overflow; square exp(|x|/2) instead.
      let w = exp(0.5 * a)
      let t = h * w
      return t * w
    }
    return x * shuge  // overflow to +-inf
  }

  /// Hyperbolic cosine of `x`, (e^x + e^-x) / 2.
  ///
  /// Matches Java's `StrictMath.cosh` (and therefore `Math.cosh`) bit for bit.
  static func cosh(_ x: Double) -> Double {
    let ix = highWord(x) & 0x7fff_ffff
    if ix >= 0x7ff0_0000 {
      return x * x  // +inf or NaN
    }
    let a = abs(x)

    if ix < 0x3fd6_2e43 {
      // |x| < ln2/2: 1 + expm1(|x|)^2 / (2 * exp(|x|))
      let t = expm1(a)
      let w = 1.0 + t
      if ix < 0x3c80_0000 {
        return w  // |x| < 2^-55
      }
      return 1.0 + (t * t) / (w + w)
    }
    if ix < 0x4036_0000 {
      // ln2/2 <= |x| < 22
      let t = exp(a)
      return 0.5 * t + 0.5 / t
    }
    if ix < 0x4086_2e42 {
      return 0.5 * exp(a)  // 22 <= |x| < ~709.78
    }
    if ix < hyperbolicOverflowHigh
      || (ix == hyperbolicOverflowHigh && lowWord(x) <= hyperbolicOverflowLow)
    {
      let w = exp(0.5 * a)
      let t = 0.5 * w
      return t * w
    }
    return huge * huge  // overflow to +inf
  }

  /// Hyperbolic tangent of `x`, sinh(x) / cosh(x), in [-1, 1].
  ///
  /// Matches Java's `StrictMath.tanh` (and therefore `Math.tanh`) bit for bit.
  static func tanh(_ x: Double) -> Double {
    let jx = highWord(x)
    let ix = jx & 0x7fff_ffff
    if ix >= 0x7ff0_0000 {
      // tanh(+-inf) = +-1, tanh(NaN) = NaN
      return jx >= 0 ? 1.0 / x + 1.0 : 1.0 / x - 1.0
    }

    let z: Double
    if ix < 0x4036_0000 {
      // |x| < 22
      if ix < 0x3c80_0000 {
        return x * (1.0 + x)  // |x| < 2^-55
      }
      if ix >= 0x3ff0_0000 {
        // |x| >= 1: 1 - 2/(e^(2|x|) + 1)
        let t = expm1(2.0 * abs(x))
        z = 1.0 - 2.0 / (t + 2.0)
      } else {
        // |x| < 1: -expm1(-2|x|) / (expm1(-2|x|) + 2)
        let t = expm1(-2.0 * abs(x))
        z = -t / (t + 2.0)
      }
    } else {
      z = 1.0 - tiny  // |x| >= 22: +-1
    }
    return jx >= 0 ? z : -z
  }
}
