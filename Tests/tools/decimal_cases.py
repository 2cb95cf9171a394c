#!/usr/bin/env python3
"""Writes Tests/IoTSQLTests/Decimal/arithmetic.txt: decimal arithmetic cases whose expected results
come from Python's decimal module set up as AWS's decimals (34 digits, half to even, 1E-999 to
9.999...E999), the oracle DecimalArithmeticTests checks DecimalMath against.

Usage: python3 Tests/tools/decimal_cases.py > Tests/IoTSQLTests/Decimal/arithmetic.txt

Each line: `op a b expected`, op one of + - * / %; expected is a number, or `undefined` when the
result is beyond 9.999...E999 (the engine's operators give Undefined). A result below 1E-999 in
magnitude is expected as 0 (the engine keeps no subnormal digits). Remainders whose integer
quotient needs more than 34 digits (Python signals them) are left out.
"""
import random
from decimal import Context, Decimal, ROUND_HALF_EVEN, InvalidOperation

context = Context(prec=34, rounding=ROUND_HALF_EVEN, Emax=999, Emin=-999, traps=[])
random.seed(20261202)


def operand():
    digits = random.choice([1, 1, 2, 3, 5, 8, 15, 19, 20, 33, 34, 34])
    significand = random.randrange(10 ** (digits - 1), 10 ** digits)
    kind = random.random()
    if kind < 0.55:
        adjusted = random.randint(-12, 12)
    elif kind < 0.8:
        adjusted = random.randint(-999, 999)
    else:
        adjusted = random.choice([-999, -998, -990, -966, 966, 990, 998, 999]) + random.randint(-3, 3)
        adjusted = max(-999, min(999, adjusted))
    exponent = adjusted - digits + 1
    sign = -1 if random.random() < 0.4 else 1
    return Decimal(sign * significand).scaleb(exponent, context=Context(prec=40))


def close_pair():
    """Operands whose difference cancels most digits, or whose sum ends in a tie."""
    a = operand()
    shift = random.randint(0, 40)
    b = a.scaleb(-shift, context=Context(prec=40)) if random.random() < 0.5 else -a + Decimal(random.randint(1, 9)).scaleb(
        a.adjusted() - 34 - random.randint(0, 3), context=Context(prec=40))
    return a, context.plus(b)


def expected(result):
    if result.is_infinite():
        return "undefined"
    if result.is_nan():
        return None
    if result != 0 and result.adjusted() < -999:
        return "0"
    return str(result)


operations = {"+": context.add, "-": context.subtract, "*": context.multiply, "/": context.divide,
              "%": context.remainder}
lines = []
while len(lines) < 4000:
    op = random.choice(list(operations))
    a, b = (close_pair() if op in "+-" and random.random() < 0.3 else (operand(), operand()))
    if b == 0 and op in "/%":
        continue
    if any(x != 0 and x.adjusted() < -999 for x in (a, b)):
        continue  # the engine reads such a number as 1E-999: not an operand of this oracle
    context.clear_flags()
    try:
        result = operations[op](a, b)
    except InvalidOperation:
        continue
    text = expected(result)
    if text is None:
        continue
    lines.append(f"{op} {a} {b} {text}")
print("\n".join(lines))
