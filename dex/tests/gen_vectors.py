"""Writes dex/tests/vectors.json: 10,000 inputs of the three Bancor returns with
- `exact`: the exact value rounded down, computed with 120-digit decimal arithmetic (an exact
  reference independent of the Rust fixed-point code), and
- `fixed`: what the fixed-point algorithm returns (Bancor's `generalLog` at 127 bits, the
  exponential by halving, a series and squarings at 160 bits, every step truncated), written
  again here in Python's integers, independently of the Rust code, as Bancor's Solidity formula
  run on a node would be for theirs. The Rust formula must equal `fixed` to the last unit.
Deterministic: `python3 dex/tests/gen_vectors.py`."""
import json
import random
from decimal import Decimal, getcontext, ROUND_FLOOR

getcontext().prec = 120
MAX_WEIGHT = 1_000_000
rng = random.Random(20261130)


def amount():
    # Spread over magnitudes: 1 unit to 10^33 (a billion 18-decimal tokens and beyond).
    return rng.randint(1, 10 ** rng.randint(1, 33))


def weight():
    return rng.choice([rng.randint(1, MAX_WEIGHT), rng.choice([100_000, 250_000, 500_000, 999_999, 1])])


def floor(d):
    return int(d.to_integral_value(rounding=ROUND_FLOOR))


def power(base, exp):
    return (base.ln() * exp).exp()


# The fixed-point algorithm, in integers (every division and shift truncates).
MAXP = 127
FIXED_1 = 1 << MAXP
LN2 = 0x58B90BFBE8E7BCD5E4F1D9CC01F97B57  # floor(ln 2 * 2^127)
EXP_BITS = 160
MAX_EXP_ARG = 60


def fixed_exp(x):
    k = max(x.bit_length() - MAXP, 0)
    z = (x << (EXP_BITS - MAXP)) >> k
    term = total = 1 << EXP_BITS
    n = 1
    while term:
        term = ((term * z) >> EXP_BITS) // n
        total += term
        n += 1
    for _ in range(k):
        total = (total * total) >> EXP_BITS
    return total >> (EXP_BITS - MAXP)


def fixed_log(x):
    res = 0
    if x >= 2 * FIXED_1:
        count = (x // FIXED_1).bit_length() - 1
        x >>= count
        res = count * FIXED_1
    if x > FIXED_1:
        for i in range(MAXP, 0, -1):
            x = x * x // FIXED_1
            if x >= 2 * FIXED_1:
                x >>= 1
                res += 1 << (i - 1)
    return (res * LN2) >> MAXP


def fixed_power(base_n, base_d, exp_n, exp_d):
    arg = fixed_log(base_n * FIXED_1 // base_d) * exp_n // exp_d
    if arg > MAX_EXP_ARG << MAXP:
        return None
    return fixed_exp(arg)


def fixed(v):
    if v["kind"] == "purchase":
        supply, reserve, w, a = int(v["supply"]), int(v["reserve"]), v["weight"], int(v["amount"])
        r = fixed_power(a + reserve, reserve, w, MAX_WEIGHT)
        return None if r is None else ((supply * r) >> MAXP) - supply
    if v["kind"] == "sale":
        supply, reserve, w, a = int(v["supply"]), int(v["reserve"]), v["weight"], int(v["amount"])
        r = fixed_power(supply, supply - a, MAX_WEIGHT, w)
        return None if r is None else (reserve * r - (reserve << MAXP)) // r
    src, tgt, a = int(v["source"]), int(v["target"]), int(v["amount"])
    r = fixed_power(src + a, src, v["source_weight"], v["target_weight"])
    return None if r is None else (tgt * r - (tgt << MAXP)) // r


out = []
while len(out) < 10_000:
    kind = rng.choice(["purchase", "sale", "cross"])
    if kind == "purchase":
        supply, reserve, w, a = amount(), amount(), weight(), amount()
        if w == MAX_WEIGHT:
            continue
        if (Decimal(a + reserve) / Decimal(reserve)).ln() * w / MAX_WEIGHT > 60:
            continue
        exact = Decimal(supply) * (power(Decimal(a + reserve) / Decimal(reserve), Decimal(w) / MAX_WEIGHT) - 1)
        v = {"kind": kind, "supply": str(supply), "reserve": str(reserve), "weight": w, "amount": str(a)}
    elif kind == "sale":
        supply, reserve, w = amount(), amount(), weight()
        a = rng.randint(1, supply)
        if w == MAX_WEIGHT or a == supply:
            continue
        if (Decimal(supply) / Decimal(supply - a)).ln() * MAX_WEIGHT / w > 60:
            continue
        exact = Decimal(reserve) * (1 - power(Decimal(supply - a) / Decimal(supply), Decimal(MAX_WEIGHT) / w))
        v = {"kind": kind, "supply": str(supply), "reserve": str(reserve), "weight": w, "amount": str(a)}
    else:
        src, tgt, ws, wt, a = amount(), amount(), weight(), weight(), amount()
        if ws == wt:
            continue
        base = Decimal(src + a) / Decimal(src)
        # Powers above e^60 are refused by the formula: left out.
        if base.ln() * Decimal(ws) / Decimal(wt) > 60:
            continue
        exact = Decimal(tgt) * (1 - 1 / power(base, Decimal(ws) / Decimal(wt)))
        v = {"kind": kind, "source": str(src), "source_weight": ws, "target": str(tgt), "target_weight": wt, "amount": str(a)}
    e = floor(exact)
    if e >= 2 ** 128:
        continue
    v["exact"] = str(e)
    f = fixed(v)
    if f is None or f >= 2 ** 128:
        continue
    v["fixed"] = str(f)
    out.append(v)

with open(__file__.replace("gen_vectors.py", "vectors.json"), "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")
print(len(out), "vectors")
