"""Writes dex/tests/vectors.json: 10,000 inputs of the three Bancor returns with their exact
value rounded down, computed with 120-digit decimal arithmetic (an exact reference independent
of the Rust fixed-point code). Deterministic: `python3 dex/tests/gen_vectors.py`."""
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
    out.append(v)

with open(__file__.replace("gen_vectors.py", "vectors.json"), "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")
print(len(out), "vectors")
