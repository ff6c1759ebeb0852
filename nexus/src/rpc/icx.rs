//! The `icx_*` and `debug_*` methods of one channel.

use super::params::{self as p, object};
use super::shapes;
use super::WaitTimeout;
use crate::config::RpcConfig;
use crate::error::{code, IconError};
use crate::ledger::chain::Chain;
use crate::metrics::Metrics;
use crate::pool::admission::Admission;
use crate::pool::mempool::Mempool;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{Extensions, RpcModule};
use nexus_proto::value::{format_bytes, format_int, parse_u64};
use nexus_proto::{merkle, Address, Hash32, SignedTransaction};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the methods of one channel work with.
pub struct ChannelApi {
    /// The ledger.
    pub chain: Arc<Chain>,
    /// The pool.
    pub pool: Arc<Mempool>,
    /// Admission checks.
    pub admission: Arc<Admission>,
    /// Server limits and waits.
    pub rpc: RpcConfig,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The channel's BTP role, if its genesis gives it one (`btp_*` methods).
    pub btp: Option<crate::ledger::genesis::GenesisBtp>,
    /// The node's validator key, on notary channels (it signs decisions of final blocks).
    pub notary_key: Option<nexus_proto::KeyPair>,
}

pub(super) type Handler = fn(&ChannelApi, Map<String, Value>) -> Result<Value, IconError>;

/// Runs a handler; a panic (a bug: every input error has a typed answer) becomes -32603 with
/// the reason instead of a dropped connection.
fn guarded<T>(name: &str, run: impl FnOnce() -> Result<T, IconError>) -> Result<T, IconError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|p| {
        let why = crate::panic_message(p.as_ref());
        tracing::error!(method = name, %why, "RPC handler panicked");
        Err(IconError::internal(format!("{name} failed: {why}")))
    })
}

/// Builds the channel's method table; `debug` adds the `debug_*` methods (served under
/// `/api/v3d` only).
pub(super) fn module(
    api: Arc<ChannelApi>,
    debug: bool,
) -> Result<RpcModule<Arc<ChannelApi>>, jsonrpsee::core::RegisterMethodError> {
    let mut m = RpcModule::new(api);
    let sync: [(&'static str, Handler); 17] = [
        ("icx_getLastBlock", get_last_block),
        ("icx_getBlockByHeight", get_block_by_height),
        ("icx_getBlockByHash", get_block_by_hash),
        ("icx_getBlockHeaderByHeight", get_block_header_by_height),
        ("icx_getVotesByHeight", get_votes_by_height),
        ("icx_getDataByHash", get_data_by_hash),
        ("icx_getBalance", get_balance),
        ("icx_getTotalSupply", get_total_supply),
        ("icx_getScoreApi", get_score_api),
        ("icx_getScoreStatus", get_score_status),
        ("icx_call", call),
        ("icx_getTransactionResult", get_transaction_result),
        ("icx_getTransactionByHash", get_transaction_by_hash),
        ("icx_getProofForResult", get_proof_for_result),
        ("icx_getProofForEvents", get_proof_for_events),
        ("icx_getProofForState", get_proof_for_state),
        ("icx_getNetworkInfo", get_network_info),
    ];
    for (name, f) in sync.into_iter().chain(super::btp::METHODS) {
        m.register_method(name, move |params, api, _| {
            let start = Instant::now();
            let r = guarded(name, || object(&params).and_then(|o| f(api, o)));
            api.metrics.rpc_call(name, start.elapsed());
            r.map_err(ErrorObjectOwned::from)
        })?;
    }
    m.register_async_method("icx_sendTransaction", |params, api, _| async move {
        let start = Instant::now();
        let r = match wait_for_room(&api).await {
            Ok(()) => {
                let stage = crate::metrics::StageTimer::start();
                let r = guarded("icx_sendTransaction", || {
                    object(&params).and_then(|o| send_transaction(&api, o))
                });
                stage.stop(&api.metrics, &api.chain.channel, "admission_rpc", 1);
                r
            }
            Err(e) => Err(e),
        };
        api.metrics.rpc_call("icx_sendTransaction", start.elapsed());
        r.map_err(ErrorObjectOwned::from)
    })?;
    if debug {
        m.register_method("debug_estimateStep", |params, api, _| {
            let start = Instant::now();
            let r = guarded("debug_estimateStep", || {
                object(&params).and_then(|o| estimate_step(api, o))
            });
            api.metrics.rpc_call("debug_estimateStep", start.elapsed());
            r.map_err(ErrorObjectOwned::from)
        })?;
    }
    m.register_async_method(
        "icx_sendTransactionAndWait",
        |params, api, ext| async move {
            let start = Instant::now();
            let admitted = match wait_for_room(&api).await {
                Ok(()) => guarded("icx_sendTransactionAndWait", || {
                    object(&params).and_then(|o| api.admission.admit(Value::Object(o)))
                }),
                Err(e) => Err(e),
            };
            let r = match admitted {
                Ok(hash) => wait_result(&api, hash, &ext).await,
                Err(e) => Err(e),
            };
            api.metrics
                .rpc_call("icx_sendTransactionAndWait", start.elapsed());
            r.map_err(ErrorObjectOwned::from)
        },
    )?;
    m.register_async_method("icx_waitTransactionResult", |params, api, ext| async move {
        let start = Instant::now();
        let r = match object(&params).and_then(|o| {
            p::only(&o, &["txHash"])?;
            p::hash(&o, "txHash")
        }) {
            Ok(hash) => wait_result(&api, hash, &ext).await,
            Err(e) => Err(e),
        };
        api.metrics
            .rpc_call("icx_waitTransactionResult", start.elapsed());
        r.map_err(ErrorObjectOwned::from)
    })?;
    Ok(m)
}

fn wait_limit(api: &ChannelApi, ext: &Extensions) -> Duration {
    let asked = ext
        .get::<WaitTimeout>()
        .map(|w| w.0)
        .unwrap_or(Duration::from_millis(api.rpc.default_wait_timeout_ms));
    asked.min(Duration::from_millis(api.rpc.max_wait_timeout_ms))
}

async fn wait_result(api: &ChannelApi, hash: Hash32, ext: &Extensions) -> Result<Value, IconError> {
    let known = api.pool.contains(&hash) || api.chain.has_transaction(&hash)?;
    if !known {
        return Err(IconError::not_found(format!("no transaction {hash}")));
    }
    if !api
        .chain
        .wait_committed(&hash, wait_limit(api, ext))
        .await?
    {
        return Err(IconError {
            code: code::TIMEOUT,
            message: format!("timed out waiting for the result of {hash}"),
            data: Some(Value::String(hash.to_string())),
        });
    }
    result_of(api, &hash)
}

fn check_height(api: &ChannelApi, o: &Map<String, Value>) -> Result<(), IconError> {
    if let Some(h) = p::opt_string(o, "height")? {
        let h = parse_u64("height", h)?;
        let head = api.chain.head().header.height;
        if h != head {
            return Err(IconError::invalid_params(format!(
                "height {}: this node serves state at the last block only ({})",
                format_int(h),
                format_int(head)
            )));
        }
    }
    Ok(())
}

pub(super) fn block_at(
    api: &ChannelApi,
    height: u64,
) -> Result<nexus_proto::block::Block, IconError> {
    api.chain.block_by_height(height)?.ok_or_else(|| {
        IconError::not_found(format!(
            "no block at height {} (last is {})",
            format_int(height),
            format_int(api.chain.head().header.height)
        ))
    })
}

fn get_last_block(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &[])?;
    shapes::block_v2(&api.chain, &api.chain.head())
}

fn get_block_by_height(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["height"])?;
    let b = block_at(api, p::u64(&o, "height")?)?;
    shapes::block_v2(&api.chain, &b)
}

fn get_block_by_hash(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["hash"])?;
    let hash = p::hash(&o, "hash")?;
    let h = api
        .chain
        .height_of(&hash)?
        .ok_or_else(|| IconError::not_found(format!("no block {hash}")))?;
    shapes::block_v2(&api.chain, &block_at(api, h)?)
}

fn get_block_header_by_height(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["height"])?;
    let b = block_at(api, p::u64(&o, "height")?)?;
    Ok(Value::String(format_bytes(&b.header.to_rlp())))
}

fn get_votes_by_height(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["height"])?;
    let h = p::u64(&o, "height")?;
    let votes = api
        .chain
        .votes_for(h)?
        .ok_or_else(|| IconError::not_found(format!("no votes for height {}", format_int(h))))?;
    Ok(Value::String(format_bytes(&votes.to_rlp())))
}

fn get_data_by_hash(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["hash"])?;
    let hash = p::hash(&o, "hash")?;
    let d = api
        .chain
        .data(&hash)?
        .ok_or_else(|| IconError::not_found(format!("no data {hash}")))?;
    Ok(Value::String(format_bytes(&d)))
}

fn get_balance(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["address", "height"])?;
    check_height(api, &o)?;
    Ok(Value::String(format_int(
        api.chain.balance(&p::address(&o, "address")?),
    )))
}

fn get_total_supply(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["height"])?;
    check_height(api, &o)?;
    Ok(Value::String(format_int(api.chain.total_supply)))
}

fn get_score_api(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["address", "height"])?;
    check_height(api, &o)?;
    let a = p::address(&o, "address")?;
    api.chain
        .score_api(&a)
        .ok_or_else(|| IconError::not_found(format!("no SCORE at {a}")))
}

fn get_score_status(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["address", "height"])?;
    check_height(api, &o)?;
    let a = p::address(&o, "address")?;
    api.chain
        .score_api(&a)
        .ok_or_else(|| IconError::not_found(format!("no SCORE at {a}")))?;
    Ok(json!({"current": {"type": "native", "status": "active"}}))
}

fn call(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["from", "to", "dataType", "data", "height"])?;
    check_height(api, &o)?;
    let to = p::address(&o, "to")?;
    let from = match p::opt_string(&o, "from")? {
        Some(s) => Address::parse("from", s)?,
        None => Address::eoa([0u8; 20]),
    };
    let dt = p::string(&o, "dataType")?;
    if dt != "call" {
        return Err(IconError::invalid_params(format!(
            "dataType: expected \"call\", got {dt:?}"
        )));
    }
    let data = match o.get("data") {
        Some(Value::Object(d)) => d,
        _ => {
            return Err(IconError::invalid_params(
                "data: expected an object {method, params}",
            ))
        }
    };
    p::only(data, &["method", "params"])?;
    let method = p::string(data, "method")?;
    let params = match data.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(IconError::invalid_params("data.params: expected an object")),
    };
    api.chain.query(from, to, method, &params)
}

fn result_of(api: &ChannelApi, hash: &Hash32) -> Result<Value, IconError> {
    let loc = api.chain.location(hash)?;
    let r = api.chain.receipt(hash)?;
    match (loc, r) {
        (Some(loc), Some(r)) => Ok(shapes::result(&r, hash, loc, &loc.block_hash)),
        _ if api.pool.contains(hash) => Err(IconError::new(
            code::PENDING,
            format!("transaction {hash} is pending"),
        )),
        _ => Err(IconError::not_found(format!("no transaction {hash}"))),
    }
}

fn get_transaction_result(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["txHash"])?;
    result_of(api, &p::hash(&o, "txHash")?)
}

fn get_transaction_by_hash(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["txHash"])?;
    let hash = p::hash(&o, "txHash")?;
    match api.chain.transaction(&hash)? {
        Some((tx, loc)) => Ok(shapes::transaction(&tx, loc, &loc.block_hash)),
        None if api.pool.contains(&hash) => Err(IconError::new(
            code::PENDING,
            format!("transaction {hash} is pending"),
        )),
        None => Err(IconError::not_found(format!("no transaction {hash}"))),
    }
}

/// Waits while the node is behind (`mempool.backlog_ms`), counting the calls that had to.
async fn wait_for_room(api: &ChannelApi) -> Result<(), IconError> {
    if api.admission.wait_for_room().await? {
        api.metrics.admission_waited(&api.chain.channel);
    }
    Ok(())
}

fn send_transaction(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    let h = api.admission.admit(Value::Object(o))?;
    Ok(Value::String(h.to_string()))
}

/// Longest SCORE storage key a state proof is asked for.
const MAX_STATE_KEY_BYTES: usize = 1024;

/// A state entry's value after block `height` (default: the last) with its proof against that
/// block's state root: an account's balance (`address` alone: the value is the balance as 16
/// bytes big-endian, absent for zero) or a SCORE's storage entry (`address` of the SCORE and
/// `key`). Checked by `nexus_light_clients::StateProof::verify` with the header's state root.
fn get_proof_for_state(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["address", "key", "height"])?;
    let address = p::address(&o, "address")?;
    let key = match p::opt_string(&o, "key")? {
        None => crate::ledger::state::balance_key(&address),
        Some(k) => {
            if !address.is_contract() {
                return Err(IconError::invalid_params(format!(
                    "key: storage keys belong to SCOREs (cx addresses), got {address}"
                )));
            }
            let k = nexus_proto::value::parse_bytes("key", k, MAX_STATE_KEY_BYTES)?;
            crate::ledger::state::score_key(&address, &k)
        }
    };
    let head = api.chain.head().header.height;
    let height = match p::opt_string(&o, "height")? {
        Some(h) => parse_u64("height", h)?,
        None => head,
    };
    let (value, proof) = api.chain.state_proof(&key, height)?.ok_or_else(|| {
        IconError::not_found(format!(
            "no state at height {}: this node keeps heights {} to {}",
            format_int(height),
            format_int(api.chain.oldest_state()),
            format_int(head)
        ))
    })?;
    let block = block_at(api, height)?;
    Ok(json!({
        "height": format_int(height),
        "blockHash": block.hash().to_string(),
        "stateRoot": block.header.state_root.to_string(),
        "key": format_bytes(&key),
        "value": value.map(|v| format_bytes(&v)),
        "proof": proof.to_json(),
    }))
}

fn get_proof_for_result(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["hash", "index"])?;
    let (block, receipts) = block_receipts(api, &o)?;
    let index = p::u64(&o, "index")? as usize;
    let hashes: Vec<Hash32> = receipts.iter().map(|r| r.hash()).collect();
    let proof = merkle::prove(&hashes, index).ok_or_else(|| {
        IconError::invalid_params(format!(
            "index {index:#x}: block {} has {} receipts",
            block.hash(),
            hashes.len()
        ))
    })?;
    Ok(shapes::proof(&proof))
}

fn block_receipts(
    api: &ChannelApi,
    o: &Map<String, Value>,
) -> Result<
    (
        nexus_proto::block::Block,
        Vec<nexus_proto::receipt::Receipt>,
    ),
    IconError,
> {
    let hash = p::hash(o, "hash")?;
    let h = api
        .chain
        .height_of(&hash)?
        .ok_or_else(|| IconError::not_found(format!("no block {hash}")))?;
    let block = block_at(api, h)?;
    let receipts = api.chain.receipts_of(&block)?;
    Ok((block, receipts))
}

fn get_proof_for_events(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["hash", "index", "events"])?;
    let (block, receipts) = block_receipts(api, &o)?;
    let index = p::u64(&o, "index")? as usize;
    let hashes: Vec<Hash32> = receipts.iter().map(|r| r.hash()).collect();
    let receipt_proof = merkle::prove(&hashes, index).ok_or_else(|| {
        IconError::invalid_params(format!(
            "index {index:#x}: block {} has {} receipts",
            block.hash(),
            hashes.len()
        ))
    })?;
    let receipt = &receipts[index];
    let event_hashes: Vec<Hash32> = receipt.event_logs.iter().map(|e| e.hash()).collect();
    let events = match o.get("events") {
        Some(Value::Array(a)) if a.len() <= nexus_proto::receipt::MAX_EVENTS => a,
        _ => {
            return Err(IconError::invalid_params(
                "events: expected a list of event indexes (0x...)",
            ))
        }
    };
    let mut out = vec![shapes::proof(&receipt_proof)];
    for e in events {
        let i = e
            .as_str()
            .ok_or_else(|| IconError::invalid_params("events: expected strings"))?;
        let i = parse_u64("events", i)? as usize;
        let proof = merkle::prove(&event_hashes, i).ok_or_else(|| {
            IconError::invalid_params(format!(
                "event {i:#x}: the receipt has {} events",
                event_hashes.len()
            ))
        })?;
        out.push(shapes::proof(&proof));
    }
    Ok(Value::Array(out))
}

fn get_network_info(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &[])?;
    Ok(json!({
        "platform": "nexus",
        "nid": format_int(api.chain.nid),
        "channel": api.chain.channel,
        "earliest": "0x0",
        "latest": format_int(api.chain.head().header.height),
        "stepPrice": format_int(api.chain.step_price),
    }))
}

fn estimate_step(api: &ChannelApi, mut o: Map<String, Value>) -> Result<Value, IconError> {
    if o.contains_key("stepLimit") || o.contains_key("signature") {
        return Err(IconError::invalid_params(
            "debug_estimateStep takes a transaction without stepLimit and signature",
        ));
    }
    o.insert(
        "stepLimit".into(),
        Value::String(format_int(api.chain.costs.query_limit)),
    );
    o.insert(
        "signature".into(),
        Value::String(nexus_proto::value::format_base64(&[0u8; 65])),
    );
    let st = SignedTransaction::from_params(o)?;
    if st.tx.nid != api.chain.nid {
        return Err(IconError::invalid_params(format!(
            "nid {} does not match this network's nid {}",
            format_int(st.tx.nid),
            format_int(api.chain.nid)
        )));
    }
    Ok(Value::String(format_int(api.chain.estimate(&st)?)))
}
