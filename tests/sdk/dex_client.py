#!/usr/bin/env python3
"""Trades on the DEX's converter SCORE with ICON's Python SDK (iconsdk), unmodified.

Environment: NEXUS_CHANNEL_URL (http://host:port/api/v3/<channel>), NEXUS_NID, NEXUS_KEYSTORE and
NEXUS_PASSWORD (a funded account), NEXUS_ETH_TO (who receives the Ether on Ethereum).
Prints one line per check, then 'N passed, M failed', then a JSON line with the Ether the
successful trade pays out; exits non-zero on any failure.
"""
import json
import os
import sys
import traceback

from iconsdk.builder.call_builder import CallBuilder
from iconsdk.builder.transaction_builder import CallTransactionBuilder
from iconsdk.exception import JSONRPCException
from iconsdk.icon_service import IconService
from iconsdk.providers.http_provider import HTTPProvider
from iconsdk.signed_transaction import SignedTransaction
from iconsdk.wallet.wallet import KeyWallet

CONVERTER = "cx000000000000000000000000000000000000de40"
NID = int(os.environ["NEXUS_NID"], 0)
ETH_TO = os.environ["NEXUS_ETH_TO"]
ICX = 10 ** 18

svc = IconService(HTTPProvider(os.environ["NEXUS_CHANNEL_URL"]))
trader = KeyWallet.load(os.environ["NEXUS_KEYSTORE"], os.environ["NEXUS_PASSWORD"])
results = []
state = {}


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append(True)
            print(f"PASS {name}", flush=True)
        except Exception:
            results.append(False)
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()
        return fn
    return wrap


def read(method, params=None):
    return svc.call(CallBuilder().to(CONVERTER).method(method).params(params or {}).build())


def convert(amount, min_return):
    tx = CallTransactionBuilder().from_(trader.get_address()).to(CONVERTER).value(amount) \
        .step_limit(5_000_000).nid(NID).method("convert") \
        .params({"_to": ETH_TO, "_minReturn": min_return}).build()
    return svc.send_transaction_and_wait(SignedTransaction(tx, trader))


@check("the converter's reserves, weights, fee and price read through CallBuilder")
def _():
    r = read("getReserves")
    assert int(r["ICX"], 16) > 0 and int(r["ETH"], 16) > 0, r
    w = read("getWeights")
    assert int(w["ICX"], 16) == 500_000 and int(w["ETH"], 16) == 500_000, w
    f = read("getFee")
    assert int(f["fee"], 16) <= int(f["maxFee"], 16), f
    assert int(read("getPrice")["icxInWei"], 16) > 0


@check("ICX -> ETH pays the quoted Ether and logs the conversion")
def _():
    q = read("getReturn", {"_from": "ICX", "_amount": 10 * ICX})
    want = int(q["amount"], 16)
    result = convert(10 * ICX, want)
    assert result["status"] == 1, result
    conv = [e for e in result["eventLogs"] if e["indexed"][0].startswith("Conversion(")]
    assert len(conv) == 1, result["eventLogs"]
    assert conv[0]["indexed"][1:] == ["ICX", "ETH", trader.get_address()], conv
    assert int(conv[0]["data"][1], 16) == want, conv
    state["eth_out"] = want


@check("ICX -> ETH below the minimum fails and only the fee is spent")
def _():
    q = int(read("getReturn", {"_from": "ICX", "_amount": 10 * ICX})["amount"], 16)
    before = svc.get_balance(trader.get_address())
    reserves = read("getReserves")
    result = convert(10 * ICX, q + 1)
    assert result["status"] == 0, result
    assert "below the minimum" in result["failure"]["message"], result["failure"]
    fee = int(result["stepUsed"]) * int(result["stepPrice"])
    assert svc.get_balance(trader.get_address()) == before - fee
    assert read("getReserves") == reserves


@check("an unknown token is refused with a clear error")
def _():
    try:
        read("getReturn", {"_from": "BTC", "_amount": ICX})
    except JSONRPCException as e:
        assert "unknown token" in str(e), e
    else:
        raise AssertionError("BTC was quoted")


passed = sum(results)
failed = len(results) - passed
print(f"{passed} passed, {failed} failed")
print(json.dumps({"ethOut": hex(state.get("eth_out", 0))}))
sys.exit(1 if failed else 0)
