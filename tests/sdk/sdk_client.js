#!/usr/bin/env node
// Drives a running Nexus node with ICON's JavaScript SDK (icon-sdk-js from npm), unmodified.
//
// Environment: NEXUS_URL (http://host:port), NEXUS_CHANNEL, NEXUS_NID, NEXUS_KEYSTORE and
// NEXUS_PASSWORD (the funded account), NEXUS_TOKEN (IRC-2 SCORE), NODE_PATH (where npm put
// icon-sdk-js). Prints one line per check and 'N passed, M failed' at the end; exits non-zero
// on any failure.
'use strict';

const fs = require('fs');
const IconService = require('icon-sdk-js').default;

const {
  HttpProvider, IconWallet: Wallet, IconBuilder, SignedTransaction, IconConverter,
} = IconService;
const URL = process.env.NEXUS_URL;
const CHANNEL = process.env.NEXUS_CHANNEL || 'public';
const NID = process.env.NEXUS_NID;
const TOKEN = process.env.NEXUS_TOKEN;
const ICX = 10n ** 18n;

const svc = new IconService(new HttpProvider(`${URL}/api/v3/${CHANNEL}`));
let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`PASS ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

function assert(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function resultOf(hash) {
  for (let i = 0; i < 200; i += 1) {
    try {
      return await svc.getTransactionResult(hash).execute();
    } catch (e) {
      // Not final yet: ICON answers -32602 "pending" / -31002 until it is.
      await sleep(100);
    }
  }
  throw new Error(`no result for ${hash} in 20 s`);
}

async function main() {
  let god;
  const to = Wallet.create();
  let txHash;
  let txResult;

  await check('load the funded keystore', async () => {
    const ks = fs.readFileSync(process.env.NEXUS_KEYSTORE, 'utf8');
    god = Wallet.loadKeystore(ks, process.env.NEXUS_PASSWORD, false);
    assert(god.getAddress().startsWith('hx'), god.getAddress());
  });

  await check('icx_getBalance of the funded account', async () => {
    const b = await svc.getBalance(god.getAddress()).execute();
    assert(BigInt(b.toFixed()) > 10n * ICX, `balance ${b}`);
  });

  await check('icx_sendTransaction: a signed transfer', async () => {
    const tx = new IconBuilder.IcxTransactionBuilder()
      .from(god.getAddress())
      .to(to.getAddress())
      .value(IconConverter.toHexNumber((3n * ICX).toString()))
      .stepLimit(IconConverter.toHexNumber(100000))
      .nid(NID)
      .nonce(IconConverter.toHexNumber(1))
      .version(IconConverter.toHexNumber(3))
      .timestamp(Date.now() * 1000)
      .build();
    const signed = new SignedTransaction(tx, god);
    txHash = await svc.sendTransaction(signed).execute();
    assert(/^0x[0-9a-f]{64}$/.test(txHash), txHash);
  });

  await check('icx_getTransactionResult: success, in a block', async () => {
    txResult = await resultOf(txHash);
    assert(Number(txResult.status) === 1, JSON.stringify(txResult));
    assert(txResult.txHash === txHash, txResult.txHash);
  });

  await check('icx_getBalance of the recipient', async () => {
    const b = await svc.getBalance(to.getAddress()).execute();
    assert(BigInt(b.toFixed()) === 3n * ICX, `balance ${b}`);
  });

  await check('icx_getBlockByHeight and icx_getBlockByHash agree', async () => {
    const height = IconConverter.toBigNumber(txResult.blockHeight);
    const byHeight = await svc.getBlockByHeight(height).execute();
    const byHash = await svc.getBlockByHash(byHeight.blockHash).execute();
    assert(byHash.height === byHeight.height, `${byHash.height} vs ${byHeight.height}`);
    assert(byHeight.blockHash === txResult.blockHash, byHeight.blockHash);
    const hashes = byHeight.confirmedTransactionList.map((t) => t.txHash);
    assert(hashes.includes(txHash), JSON.stringify(hashes));
  });

  await check('icx_getLastBlock', async () => {
    const last = await svc.getLastBlock().execute();
    assert(last.height >= Number(txResult.blockHeight), `${last.height}`);
  });

  await check('icx_call: IRC-2 balanceOf and symbol', async () => {
    const call = (method, params) => {
      const b = new IconBuilder.CallBuilder().to(TOKEN).method(method);
      return svc.call((params ? b.params(params) : b).build()).execute();
    };
    const symbol = await call('symbol');
    assert(symbol === 'NXT', symbol);
    const bal = await call('balanceOf', { _owner: god.getAddress() });
    assert(/^0x[0-9a-f]+$/.test(bal) && BigInt(bal) > 0n, bal);
  });

  await check('icx_getScoreApi of the token', async () => {
    const api = await svc.getScoreApi(TOKEN).execute();
    const names = api.getList().map((f) => f.name);
    assert(names.includes('transfer') && names.includes('balanceOf'), JSON.stringify(names));
  });

  await check('a refused transaction is a clear error', async () => {
    const tx = new IconBuilder.IcxTransactionBuilder()
      .from(to.getAddress())
      .to(god.getAddress())
      .value(IconConverter.toHexNumber((1000n * ICX).toString()))
      .stepLimit(IconConverter.toHexNumber(100000))
      .nid(NID)
      .version(IconConverter.toHexNumber(3))
      .timestamp(Date.now() * 1000)
      .build();
    let err;
    try {
      await svc.sendTransaction(new SignedTransaction(tx, to)).execute();
    } catch (e) {
      err = e;
    }
    assert(err !== undefined, 'an overspending transfer was accepted');
    assert(/balance|fund|enough/i.test(String(err.message || err)), String(err.message || err));
  });

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((e) => {
  console.log(`FAIL unexpected: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
