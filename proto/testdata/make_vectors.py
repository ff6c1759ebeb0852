#!/usr/bin/env python3
"""Makes proto/testdata/sdk_vectors.json with ICON's Python SDK (iconsdk 2.6.0).

Run from the repository root:  .venv/bin/python proto/testdata/make_vectors.py
Each vector holds the SDK's signed params, its serialization, its hash and the signer's key;
the Rust tests check that nexus-proto produces the same serialization, hash, address and
(RFC 6979 deterministic) signature.
"""
import json
import pathlib
from hashlib import sha3_256

from iconsdk.builder.transaction_builder import (
    CallTransactionBuilder, DeployTransactionBuilder, MessageTransactionBuilder, TransactionBuilder,
    DepositTransactionBuilder)
from iconsdk.libs.serializer import serialize
from iconsdk.signed_transaction import SignedTransaction
from iconsdk.wallet.wallet import KeyWallet

KEYS = [bytes.fromhex("%064x" % (0x1234567 * (i + 1))) for i in range(3)]
TS = 1_700_000_000_000_000
TOKEN = "cx" + "0" * 39 + "1"


def wallet(i):
    return KeyWallet.load(KEYS[i])


def vector(name, tx, w):
    signed = SignedTransaction(tx, w).signed_transaction_dict
    ser = serialize(signed)
    return {
        "name": name,
        "private_key": w.get_private_key(),
        "address": w.get_address(),
        "params": signed,
        "serialized": ser.decode(),
        "hash": "0x" + sha3_256(ser).hexdigest(),
    }


def main():
    w0, w1, w2 = wallet(0), wallet(1), wallet(2)
    vs = []
    vs.append(vector("transfer", TransactionBuilder().from_(w0.get_address()).to(w1.get_address())
                     .value(10**18).step_limit(100_000).nid(1).timestamp(TS).build(), w0))
    vs.append(vector("transfer_with_nonce_big_value", TransactionBuilder().from_(w1.get_address()).to(w2.get_address())
                     .value(123_456_789 * 10**18 + 7).step_limit(0x12345).nid(0x53).nonce(42).timestamp(TS + 1).build(), w1))
    vs.append(vector("call_irc2_transfer", CallTransactionBuilder().from_(w0.get_address()).to(TOKEN)
                     .step_limit(1_000_000).nid(1).timestamp(TS + 2).method("transfer")
                     .params({"_to": w1.get_address(), "_value": 5 * 10**18}).build(), w0))
    vs.append(vector("call_nested_and_escaped", CallTransactionBuilder().from_(w2.get_address()).to(TOKEN)
                     .step_limit(2_000_000).nid(1).timestamp(TS + 3).method("set.config")
                     .params({"a.b": "x\\y{z}[w].v", "list": ["1", "2.5", {"k": "v]"}, ["[", "]"]],
                              "map": {"z": "last", "a": "first", "m{}": None}, "n": 255, "flag": True,
                              "blob": b"\x01\x02", "unicode": "héllo.世界"}).build(), w2))
    vs.append(vector("deploy", DeployTransactionBuilder().from_(w0.get_address()).to("cx" + "0" * 40)
                     .step_limit(10**9).nid(1).timestamp(TS + 4).content_type("application/java")
                     .content(bytes(range(64))).params({"name": "Token", "symbol": "TOK", "decimals": 18})
                     .build(), w0))
    vs.append(vector("message", MessageTransactionBuilder().from_(w1.get_address()).to(w0.get_address())
                     .step_limit(200_000).nid(1).timestamp(TS + 5).data("0x" + "hello.{nexus}".encode().hex())
                     .build(), w1))
    vs.append(vector("deposit_add", DepositTransactionBuilder().from_(w0.get_address()).to(TOKEN)
                     .value(5000 * 10**18).step_limit(200_000).nid(1).timestamp(TS + 6).action("add").build(), w0))
    out = pathlib.Path(__file__).with_name("sdk_vectors.json")
    out.write_text(json.dumps(vs, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {len(vs)} vectors to {out}")


if __name__ == "__main__":
    main()
