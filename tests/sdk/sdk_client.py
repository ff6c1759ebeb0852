#!/usr/bin/env python3
"""Drives a running Nexus node with ICON's Python SDK (iconsdk), unmodified.

Environment: NEXUS_URL (http://host:port), NEXUS_CHANNEL, NEXUS_NID, NEXUS_KEYSTORE and
NEXUS_PASSWORD (the funded account), NEXUS_TOKEN (IRC-2 SCORE), NEXUS_OUT (a folder where this
script stores a keystore written by the SDK, for the Rust side to read back).
Prints one line per check and 'N passed, M failed' at the end; exits non-zero on any failure.
"""
import json
import os
import sys
import traceback
from hashlib import sha3_256

from iconsdk.builder.call_builder import CallBuilder
from iconsdk.builder.transaction_builder import (CallTransactionBuilder, MessageTransactionBuilder,
                                                 TransactionBuilder)
from iconsdk.exception import JSONRPCException
from iconsdk.icon_service import IconService
from iconsdk.libs.serializer import serialize
from iconsdk.monitor import BlockMonitorSpec, EventFilter, EventMonitorSpec
from iconsdk.providers.http_provider import HTTPProvider
from iconsdk.signed_transaction import SignedTransaction
from iconsdk.wallet.wallet import KeyWallet

URL = os.environ["NEXUS_URL"]
CHANNEL = os.environ.get("NEXUS_CHANNEL", "public")
NID = int(os.environ["NEXUS_NID"], 0)
TOKEN = os.environ["NEXUS_TOKEN"]
OUT = os.environ["NEXUS_OUT"]
ICX = 10 ** 18

svc = IconService(HTTPProvider(f"{URL}/api/v3/{CHANNEL}"))
god = KeyWallet.load(os.environ["NEXUS_KEYSTORE"], os.environ["NEXUS_PASSWORD"])
results = []


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


def sdk_hash(signed: SignedTransaction) -> str:
    return "0x" + sha3_256(serialize(signed.signed_transaction_dict)).hexdigest()


state = {}
alice = KeyWallet.create()
bob = KeyWallet.create()


@check("keystore written by nexus init loads in the SDK")
def _():
    assert god.get_address().startswith("hx")
    assert svc.get_balance(god.get_address()) > 0


@check("keystore written by the SDK (KeyWallet.store)")
def _():
    path = os.path.join(OUT, "sdk_wallet.json")
    alice.store(path, "Sdk-pa55!")
    with open(os.path.join(OUT, "sdk_wallet.address"), "w") as f:
        f.write(alice.get_address())
    assert KeyWallet.load(path, "Sdk-pa55!").get_address() == alice.get_address()


@check("transfer with send_transaction_and_wait; hash equals the SDK's own")
def _():
    before = svc.get_balance(god.get_address())
    tx = TransactionBuilder().from_(god.get_address()).to(alice.get_address()).value(5 * ICX) \
        .step_limit(100_000).nid(NID).nonce(1).build()
    signed = SignedTransaction(tx, god)
    result = svc.send_transaction_and_wait(signed)
    assert result["status"] == 1, result
    assert result["txHash"] == sdk_hash(signed), (result["txHash"], sdk_hash(signed))
    assert svc.get_balance(alice.get_address()) == 5 * ICX
    fee = result["stepUsed"] * result["stepPrice"]
    assert svc.get_balance(god.get_address()) == before - 5 * ICX - fee
    state["first"] = result


@check("send_transaction then wait_transaction_result and get_transaction")
def _():
    tx = TransactionBuilder().from_(alice.get_address()).to(bob.get_address()).value(ICX) \
        .step_limit(100_000).nid(NID).build()
    signed = SignedTransaction(tx, alice)
    h = svc.send_transaction(signed)
    assert h == sdk_hash(signed), (h, sdk_hash(signed))
    result = svc.wait_transaction_result(h)
    assert result["status"] == 1 and result["txHash"] == h
    again = svc.get_transaction_result(h)
    assert again["blockHash"] == result["blockHash"]
    t = svc.get_transaction(h)
    assert t["txHash"] == h and t["from"] == alice.get_address() and t["value"] == ICX
    assert t["blockHeight"] == result["blockHeight"]
    assert svc.get_balance(bob.get_address()) == ICX
    state["second"] = result


@check("blocks by height, by hash and latest")
def _():
    r = state["first"]
    by_height = svc.get_block(r["blockHeight"])
    assert by_height["height"] == r["blockHeight"]
    hashes = [t["txHash"] for t in by_height["confirmed_transaction_list"]]
    assert r["txHash"] in hashes, hashes
    by_hash = svc.get_block(r["blockHash"])
    assert by_hash["height"] == r["blockHeight"]
    assert "0x" + by_hash["block_hash"] == r["blockHash"]
    latest = svc.get_block("latest")
    assert latest["height"] >= r["blockHeight"]
    genesis = svc.get_block(0)
    assert genesis["height"] == 0 and genesis["confirmed_transaction_list"][0]["accounts"]


@check("icx_call on the IRC-2 token SCORE")
def _():
    name = svc.call(CallBuilder().to(TOKEN).method("name").build())
    symbol = svc.call(CallBuilder().to(TOKEN).method("symbol").build())
    decimals = int(svc.call(CallBuilder().to(TOKEN).method("decimals").build()), 16)
    bal = int(svc.call(CallBuilder().from_(god.get_address()).to(TOKEN).method("balanceOf")
                       .params({"_owner": god.get_address()}).build()), 16)
    assert (name, symbol, decimals) == ("Nexus Test Token", "NXT", 18), (name, symbol, decimals)
    assert bal > 0
    state["token_before"] = bal


@check("call transaction: IRC-2 transfer emits Transfer and moves tokens")
def _():
    tx = CallTransactionBuilder().from_(god.get_address()).to(TOKEN).step_limit(2_000_000).nid(NID) \
        .method("transfer").params({"_to": bob.get_address(), "_value": 7 * ICX, "_data": b"hi"}).build()
    signed = SignedTransaction(tx, god)
    result = svc.send_transaction_and_wait(signed)
    assert result["status"] == 1, result
    assert result["txHash"] == sdk_hash(signed)
    logs = result["eventLogs"]
    assert len(logs) == 1 and logs[0]["scoreAddress"] == TOKEN, logs
    assert logs[0]["indexed"] == ["Transfer(Address,Address,int,bytes)", god.get_address(), bob.get_address(),
                                  hex(7 * ICX)], logs
    bal = int(svc.call(CallBuilder().to(TOKEN).method("balanceOf").params({"_owner": bob.get_address()}).build()), 16)
    assert bal == 7 * ICX
    state["token_tx"] = result


@check("a failing call is recorded with a failure and no events")
def _():
    tx = CallTransactionBuilder().from_(alice.get_address()).to(TOKEN).step_limit(2_000_000).nid(NID) \
        .method("transfer").params({"_to": bob.get_address(), "_value": 1}).build()
    result = svc.send_transaction_and_wait(SignedTransaction(tx, alice))
    assert result["status"] == 0, result
    assert result["failure"]["code"] == 32, result["failure"]
    assert "insufficient token balance" in result["failure"]["message"]
    assert result["eventLogs"] == []


@check("message transaction")
def _():
    tx = MessageTransactionBuilder().from_(god.get_address()).to(bob.get_address()).step_limit(200_000) \
        .nid(NID).data("0x" + b"hello nexus".hex()).build()
    result = svc.send_transaction_and_wait(SignedTransaction(tx, god))
    assert result["status"] == 1, result
    t = svc.get_transaction(result["txHash"])
    assert t["dataType"] == "message" and t["data"] == "0x" + b"hello nexus".hex()


@check("score API, total supply, estimate_step")
def _():
    api = svc.get_score_api(TOKEN)
    names = {e["name"] for e in api}
    assert {"name", "symbol", "decimals", "totalSupply", "balanceOf", "transfer", "Transfer"} <= names, names
    assert svc.get_total_supply() > 0
    tx = TransactionBuilder().from_(god.get_address()).to(bob.get_address()).value(1).nid(NID).build()
    assert svc.estimate_step(tx) == 100_000


@check("JSON-RPC errors surface as JSONRPCException with ICON codes")
def _():
    try:
        svc.get_transaction_result("0x" + "00" * 32)
        raise AssertionError("expected an error")
    except JSONRPCException as e:
        assert e.rpc_code == -31004, repr(e)
    tx = TransactionBuilder().from_(god.get_address()).to(bob.get_address()).value(1) \
        .step_limit(100_000).nid(NID + 1).build()
    try:
        svc.send_transaction(SignedTransaction(tx, god))
        raise AssertionError("expected an error")
    except JSONRPCException as e:
        assert e.rpc_code == -32602 and "nid" in str(e), repr(e)


@check("block and event monitors over WebSocket")
def _():
    h = state["token_tx"]["blockHeight"]
    mon = svc.monitor(BlockMonitorSpec(h, []))
    note = mon.read(timeout=10)
    assert int(note["height"], 16) == h and note["hash"] == state["token_tx"]["blockHash"], note
    mon.close()
    flt = EventFilter("Transfer(Address,Address,int,bytes)", TOKEN, 3)
    mon = svc.monitor(EventMonitorSpec(h, flt))
    note = mon.read(timeout=10)
    assert int(note["height"], 16) == h and note["events"] == ["0x0"], note
    mon.close()


passed = sum(results)
failed = len(results) - passed
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
