//! The command line: `nexus init | node | devnet | wallet | dex | bench`.

use crate::client::RpcClient;
use crate::commands::devnet::{self, InitOptions};
use crate::commands::wallet;
use crate::config::NodeConfig;
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use nexus_proto::Address;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "nexus",
    version,
    about = "Nexus: a multi-chain interoperability hub speaking ICON JSON-RPC v3"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Make a network folder: keystores, genesis (funded account, IRC-2 token), config.
    Init {
        /// Folder to create.
        #[arg(long)]
        dir: PathBuf,
        /// Network id.
        #[arg(long, default_value_t = 3)]
        nid: u64,
        /// Channel name.
        #[arg(long, default_value = "public")]
        channel: String,
        /// JSON-RPC listen address.
        #[arg(long, default_value = "127.0.0.1:9080")]
        rpc: SocketAddr,
    },
    /// Run a node from a config file.
    Node {
        /// The config file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Start a local network (initialized on first use) and print its endpoints.
    Devnet {
        /// Folder of the network.
        #[arg(long, default_value = ".devnet")]
        dir: PathBuf,
        /// JSON-RPC listen address (of the first validator; the others take the next ports).
        #[arg(long, default_value = "127.0.0.1:9080")]
        rpc: SocketAddr,
        /// Validators, each a separate process (1 runs a single node in this process).
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// First libp2p port (validator i listens on this + i).
        #[arg(long, default_value_t = 9180)]
        p2p_port: u16,
    },
    /// Keystores, balances, transfers and SCORE calls over JSON-RPC.
    Wallet {
        #[command(subcommand)]
        cmd: WalletCmd,
    },
    /// Trade ICX and ETH on the DEX and provide liquidity (the converter SCORE on Nexus, the
    /// reserve contract on Ethereum).
    Dex {
        #[command(subcommand)]
        cmd: DexCmd,
    },
    /// Measure transfer throughput and latency of one node (starts its own).
    Bench {
        /// Transfers to send.
        #[arg(long, default_value_t = 50_000)]
        txs: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Most transactions per block.
        #[arg(long, default_value_t = 5_000)]
        block_max_txs: usize,
        /// Validators, each its own process (1: a single node).
        #[arg(long, default_value_t = 1)]
        validators: usize,
        /// Offered load in transactions per second (0: as fast as possible).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// The nodes' empty-block interval in ms (0: unpaced); default: the config's.
        #[arg(long)]
        empty_block_interval_ms: Option<u64>,
        /// Measure empty blocks for this many seconds instead of transfers.
        #[arg(long, default_value_t = 0)]
        empty_seconds: u64,
        /// Grow the state to this many accounts first (generated in genesis); every transfer
        /// then goes to a new account, and a single node is restarted and measured after.
        #[arg(long)]
        accounts: Option<u64>,
        /// Keep a single node's folder in this directory and reuse it on later runs (the state
        /// then grows across runs; `--accounts` sizes only the run that creates it).
        #[arg(long)]
        state_dir: Option<std::path::PathBuf>,
        /// Set the nodes' `[state] mmap_reads` (table files read through memory maps).
        #[arg(long)]
        mmap_reads: bool,
        /// Make the measurement this many times and print the medians last (each run's JSON
        /// line as it ends). A kept or generated state is copied for each run, so every run
        /// starts from the same state.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Before each run on a grown state (`--accounts N`), make the same run on a fresh
        /// state, and print the rate and p99 of one against the other (medians).
        #[arg(long)]
        compare_fresh: bool,
    },
    /// Ethereum figures: receipt-proof checks per second in the light client, and Ether
    /// round trips Ethereum -> chain A -> Ethereum through the hub (anvil, four validators,
    /// chains, portal). JSON on the last line. Gas per relayed message: `cargo nextest run -p
    /// nexus-tests --test eth_contracts gas --no-capture`.
    BenchEth {
        /// Transfers in each direction.
        #[arg(long, default_value_t = 5)]
        trips: usize,
    },
    /// DEX figures on the devnet's hub with Ethereum: swaps per second through the converter
    /// SCORE (three bursts), end-to-end time of ETH -> ICX and ICX -> ETH, steps and gas per
    /// swap. JSON on the last line.
    BenchDex {
        /// ICX -> ETH conversions in each burst.
        #[arg(long, default_value_t = 1_000)]
        swaps: usize,
        /// Trades in each direction for the end-to-end times.
        #[arg(long, default_value_t = 5)]
        trips: usize,
    },
    /// Measure BTP messages through one notary channel of four validators (starts its own hub:
    /// validators, chains A and B, a portal).
    BenchBtp {
        /// Token transfers (one message each) from A to B.
        #[arg(long, default_value_t = 5_000)]
        messages: usize,
        /// Offered messages per second (0: as fast as possible).
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
    },
}

#[derive(clap::Args)]
struct Endpoint {
    /// JSON-RPC endpoint.
    #[arg(
        long,
        default_value = "http://127.0.0.1:9080/api/v3/public",
        env = "NEXUS_RPC"
    )]
    rpc: String,
}

#[derive(clap::Args)]
struct Signer {
    /// Keystore of the sender.
    #[arg(long)]
    keystore: PathBuf,
    /// Keystore password (or set NEXUS_PASSWORD).
    #[arg(long, env = "NEXUS_PASSWORD", hide_env_values = true)]
    password: String,
}

#[derive(clap::Args)]
struct EthSide {
    /// Ethereum JSON-RPC URL (the devnet prints it).
    #[arg(long)]
    eth_rpc: Option<String>,
    /// The DEX's reserve contract (0x...; the devnet prints it).
    #[arg(long)]
    reserve: Option<String>,
    #[command(flatten)]
    key: EthKey,
}

/// The sender's Ethereum key: a secret, or a keystore and its password.
#[derive(clap::Args)]
struct EthKey {
    /// The sender's Ethereum secret key, 0x + 64 hex digits (or set NEXUS_ETH_KEY).
    #[arg(long, env = "NEXUS_ETH_KEY", hide_env_values = true)]
    eth_key: Option<String>,
    /// The sender's Ethereum keystore instead (Web3 Secret Storage v3, as geth, Foundry's
    /// `cast wallet` and web3.py write).
    #[arg(long)]
    eth_keystore: Option<PathBuf>,
    /// The keystore's password (or set NEXUS_ETH_PASSWORD).
    #[arg(long, env = "NEXUS_ETH_PASSWORD", hide_env_values = true)]
    eth_password: Option<String>,
}

impl EthKey {
    fn secret(&self) -> Result<String> {
        super::dex::eth_secret(
            self.eth_key.as_deref(),
            self.eth_keystore.as_deref(),
            self.eth_password.as_deref(),
        )
    }
}

impl EthSide {
    fn get(&self) -> Result<(&str, &str, String)> {
        match (&self.eth_rpc, &self.reserve) {
            (Some(u), Some(r)) => Ok((u, r, self.key.secret()?)),
            _ => anyhow::bail!(
                "Ether comes from Ethereum: give --eth-rpc, --reserve and --eth-key (or --eth-keystore)"
            ),
        }
    }
}

#[derive(Subcommand)]
enum DexCmd {
    /// Reserves, price, fee and weights.
    Price {
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// What selling an amount returns now (fee included).
    Quote {
        /// ICX or ETH: what is sold.
        #[arg(long)]
        from: String,
        /// Amount such as 1.5 (18 decimals), or 0x... in loop or wei.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Trade. ICX -> ETH: sent from Nexus (--keystore), Ether paid at --to (0x...).
    /// ETH -> ICX: sent from Ethereum (--eth-rpc, --reserve, --eth-key), ICX paid at --to (hx...).
    /// A trade that would return less than the minimum is refunded in full.
    Swap {
        /// ICX or ETH: what is sold.
        #[arg(long)]
        from: String,
        /// Amount such as 1.5, or 0x... in loop or wei.
        #[arg(long)]
        amount: String,
        /// Who receives the other coin.
        #[arg(long)]
        to: String,
        /// Least accepted return (0x... in wei or loop, or 1.5); default: the quote less
        /// --slippage-bps.
        #[arg(long)]
        min_return: Option<String>,
        /// Tolerated fall from the quote, in basis points, when --min-return is not given.
        #[arg(long, default_value_t = 100)]
        slippage_bps: u32,
        /// Keystore of the ICX seller.
        #[arg(long, requires = "password")]
        keystore: Option<PathBuf>,
        /// Keystore password (or set NEXUS_PASSWORD).
        #[arg(long, env = "NEXUS_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[command(flatten)]
        eth: EthSide,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Deposit Ether on the reserve for liquidity, credited to --to (hx...) on Nexus.
    Deposit {
        /// Ether such as 1.5, or 0x... in wei.
        #[arg(long)]
        amount: String,
        /// The provider's account on Nexus.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        eth: EthSide,
    },
    /// Add ICX and deposited Ether as liquidity, in the pool's proportion (the rest of the ICX
    /// comes back; the rest of the Ether stays deposited).
    AddLiquidity {
        #[command(flatten)]
        signer: Signer,
        /// ICX offered.
        #[arg(long)]
        icx: String,
        /// Ether offered from the deposit.
        #[arg(long)]
        eth: String,
        /// Least pool tokens accepted.
        #[arg(long, default_value = "0x0")]
        min_tokens: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Return pool tokens: ICX to the sender, Ether to --eth-to on Ethereum.
    RemoveLiquidity {
        #[command(flatten)]
        signer: Signer,
        /// Pool tokens (1.5, or 0x...).
        #[arg(long)]
        tokens: String,
        /// Who receives the Ether (0x...).
        #[arg(long)]
        eth_to: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

#[derive(Subcommand)]
enum WalletCmd {
    /// Create a keystore (ICON format, readable by iconsdk's KeyWallet.load).
    Create {
        /// File to write.
        #[arg(long)]
        keystore: PathBuf,
        /// Password (or set NEXUS_PASSWORD).
        #[arg(long, env = "NEXUS_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Show the ICX balance of an address.
    Balance {
        /// hx or cx address.
        address: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Send ICX and wait for the result.
    Transfer {
        #[command(flatten)]
        signer: Signer,
        /// Receiver.
        #[arg(long)]
        to: String,
        /// Amount: ICX such as 1.5, or loop as 0x...
        #[arg(long)]
        value: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Call a SCORE method: read-only without --keystore, a transaction with it.
    Call {
        /// SCORE address.
        #[arg(long)]
        to: String,
        /// Method name.
        #[arg(long)]
        method: String,
        /// Parameters as a JSON object of strings, e.g. '{"_owner":"hx..."}'.
        #[arg(long)]
        params: Option<String>,
        /// Keystore of the sender (sends a transaction).
        #[arg(long, requires = "password")]
        keystore: Option<PathBuf>,
        /// Keystore password (or set NEXUS_PASSWORD).
        #[arg(long, env = "NEXUS_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Send ICX to another chain through the BTP hub (the BMC's token service).
    BtpTransfer {
        #[command(flatten)]
        signer: Signer,
        /// Receiver on the other chain: <network>/<address>, such as 0x102.loop/hx...
        #[arg(long)]
        to: String,
        /// Amount: ICX such as 1.5, or loop as 0x...
        #[arg(long)]
        value: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Send Ether from an Ethereum account to another chain through the hub (the Ethereum
    /// token service's `transferNative`).
    EthTransfer {
        /// Ethereum JSON-RPC URL (the devnet prints it).
        #[arg(long)]
        eth_rpc: String,
        /// The token service contract (0x...; the devnet prints it).
        #[arg(long)]
        token_service: String,
        #[command(flatten)]
        key: EthKey,
        /// Receiver: <network>/<address>, such as 0x101.loop/hx...
        #[arg(long)]
        to: String,
        /// Amount in Ether, such as 1.5 (or wei as 0x...).
        #[arg(long)]
        value: String,
    },
    /// Where a BTP message sent from this chain is: sent, notarized, delivered, refunded.
    BtpStatus {
        /// The service serial number `btp-transfer` printed.
        sn: String,
        /// The notary channel of this chain on Nexus (to tell notarized from sent).
        #[arg(long)]
        notary: Option<String>,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Show a transaction and its result.
    Tx {
        /// Transaction hash.
        hash: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

fn init_logs(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

fn print(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Init {
            dir,
            nid,
            channel,
            rpc,
        } => {
            let out = devnet::init(
                &dir,
                &InitOptions {
                    nid,
                    channel,
                    listen: rpc,
                    ..InitOptions::default()
                },
            )?;
            println!("config           {}", out.config.display());
            println!("funded account   {}", out.funded);
            println!(
                "  keystore       {}   password {}",
                out.funded_keystore.display(),
                out.funded_password
            );
            println!("token SCORE      {}", out.token);
            println!(
                "start it with:   nexus node --config {}",
                out.config.display()
            );
        }
        Cmd::Node { config } => {
            let cfg = NodeConfig::load(&config)?;
            init_logs(&cfg.log);
            crate::node::start(&cfg).await?.run_until_signal().await?;
        }
        Cmd::Devnet {
            dir,
            rpc,
            validators,
            p2p_port,
        } => {
            init_logs("warn");
            anyhow::ensure!(validators >= 1, "--validators must be at least 1");
            // An existing folder keeps its shape: a single node has config.toml at the top.
            if validators == 1 || dir.join("config.toml").exists() {
                devnet::run(&dir, rpc).await?;
            } else {
                devnet::run_network(&dir, validators, rpc, p2p_port).await?;
            }
        }
        Cmd::Bench {
            txs,
            clients,
            block_max_txs,
            validators,
            rate,
            empty_block_interval_ms,
            empty_seconds,
            accounts,
            state_dir,
            mmap_reads,
            repeat,
            compare_fresh,
        } => {
            anyhow::ensure!(validators >= 1, "--validators must be at least 1");
            let repeated = repeat != 1 || compare_fresh;
            if empty_seconds > 0 && repeated {
                anyhow::ensure!(!compare_fresh, "--compare-fresh measures transfers");
                let opts = crate::commands::bench::BenchOptions {
                    txs: 0,
                    clients: 0,
                    block_max_txs,
                    validators,
                    rate: 0,
                    empty_block_interval_ms,
                    accounts: None,
                    mmap_reads,
                };
                let summary =
                    crate::commands::bench_repeat::run_empty(opts, empty_seconds, repeat).await?;
                println!("{summary}");
                return Ok(());
            }
            if empty_seconds > 0 {
                let dir = std::env::temp_dir().join(format!("nexus-bench-{}", std::process::id()));
                let summary = crate::commands::bench::run_empty(
                    crate::commands::bench::BenchOptions {
                        txs: 0,
                        clients: 0,
                        block_max_txs,
                        validators,
                        rate: 0,
                        empty_block_interval_ms,
                        accounts: None,
                        mmap_reads,
                    },
                    &dir,
                    empty_seconds,
                )
                .await;
                let _ = std::fs::remove_dir_all(&dir);
                let summary = summary?;
                eprintln!(
                    "{} empty blocks in {} s: {} blocks/s, interval p50 {} ms p99 {} ms",
                    summary["blocks"],
                    summary["seconds"],
                    summary["blocks_per_sec"],
                    summary["block_interval_ms_p50"],
                    summary["block_interval_ms_p99"]
                );
                println!("{summary}");
                return Ok(());
            }
            anyhow::ensure!(
                clients > 0 && txs >= clients,
                "need at least one client and as many transfers as clients"
            );
            anyhow::ensure!(
                state_dir.is_none() || validators == 1,
                "--state-dir keeps a single node's folder: use it with --validators 1"
            );
            let opts = crate::commands::bench::BenchOptions {
                txs,
                clients,
                block_max_txs,
                validators,
                rate,
                empty_block_interval_ms,
                accounts,
                mmap_reads,
            };
            if repeated {
                // A grown state is generated once and copied for each run.
                let grown = accounts.is_some_and(|n| n > 0);
                let generated = (state_dir.is_none() && validators == 1 && grown)
                    .then(|| crate::commands::bench_repeat::scratch("state"));
                let r = crate::commands::bench_repeat::Repeat {
                    runs: repeat,
                    compare_fresh,
                    state_dir: state_dir.clone().or(generated.clone()),
                };
                let summary = crate::commands::bench_repeat::run(opts, &r).await;
                if let Some(g) = generated {
                    let _ = std::fs::remove_dir_all(g);
                }
                let summary = summary?;
                eprintln!(
                    "medians of {} runs: {} tx/s committed, p99 {} ms{}",
                    summary["runs"],
                    summary["median"]["committed_tps"],
                    summary["median"]["latency_ms_p99"],
                    if compare_fresh {
                        format!(
                            "; {} of a fresh state's rate, {}x its p99",
                            summary["rate_vs_fresh"], summary["p99_vs_fresh"]
                        )
                    } else {
                        String::new()
                    }
                );
                println!("{summary}");
                return Ok(());
            }
            let dir = state_dir.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("nexus-bench-{}", std::process::id()))
            });
            let summary = crate::commands::bench::run(opts, &dir).await;
            if state_dir.is_none() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            let summary = summary?;
            eprintln!(
                "committed {} of {} transfers: {} tx/s committed, {} tx/s accepted, latency p50 {} ms p99 {} ms, node CPU {} us/tx",
                summary["committed"], summary["txs"], summary["committed_tps"], summary["accepted_tps"],
                summary["latency_ms_p50"], summary["latency_ms_p99"], summary["node_cpu_us_per_tx"]
            );
            println!("{summary}");
        }
        Cmd::BenchBtp { messages, rate } => {
            anyhow::ensure!(messages > 0, "--messages must be at least 1");
            let dir = std::env::temp_dir().join(format!("nexus-bench-btp-{}", std::process::id()));
            let summary = crate::commands::bench_btp::run(
                crate::commands::bench_btp::BtpBenchOptions { messages, rate },
                &dir,
            )
            .await;
            let _ = std::fs::remove_dir_all(&dir);
            let summary = summary?;
            eprintln!(
                "{} messages A -> notary-a -> B: {} delivered/s, source to delivered p50 {} ms p99 {} ms, notary CPU {} us/message/validator",
                summary["messages"], summary["delivered_per_sec"], summary["source_to_delivered_ms_p50"],
                summary["source_to_delivered_ms_p99"], summary["notary_cpu_us_per_message_per_validator"]
            );
            println!("{summary}");
        }
        Cmd::BenchEth { trips } => {
            anyhow::ensure!((1..=1000).contains(&trips), "--trips: expected 1..=1000");
            let dir = std::env::temp_dir().join(format!("nexus-bench-eth-{}", std::process::id()));
            let summary = crate::commands::bench_eth::run(trips, &dir).await;
            let _ = std::fs::remove_dir_all(&dir);
            let summary = summary?;
            eprintln!(
                "receipt proofs {} /s (secp256k1 {} /s); Ether to chain A p50 {} ms, back p50 {} ms ({} trips)",
                summary["receipt_proofs_verified_per_sec_one_core"], summary["secp256k1_recover_per_sec_one_core"],
                summary["eth_to_chain_ms_p50"], summary["chain_to_eth_ms_p50"], trips
            );
            println!("{summary}");
        }
        Cmd::BenchDex { swaps, trips } => {
            anyhow::ensure!(
                (1..=100_000).contains(&swaps),
                "--swaps: expected 1..=100000"
            );
            anyhow::ensure!((1..=1000).contains(&trips), "--trips: expected 1..=1000");
            let dir = std::env::temp_dir().join(format!("nexus-bench-dex-{}", std::process::id()));
            let summary = crate::commands::bench_dex::run(swaps, trips, &dir).await;
            let _ = std::fs::remove_dir_all(&dir);
            let summary = summary?;
            eprintln!(
                "swaps through the converter {} /s (runs {}; secp256k1 {} /s); ETH -> ICX p50 {} ms, ICX -> ETH p50 {} ms; {} steps per convert, swap {} gas, payout relay {} gas",
                summary["swaps_per_sec"], summary["swaps_per_sec_runs"], summary["secp256k1_recover_per_sec_one_core"],
                summary["eth_to_icx_ms_p50"], summary["icx_to_eth_ms_p50"], summary["steps_per_convert_dec"],
                summary["gas_reserve_swap"], summary["gas_payout_relay_tx"]
            );
            println!("{summary}");
        }
        Cmd::Wallet { cmd } => wallet_cmd(cmd).await?,
        Cmd::Dex { cmd } => dex_cmd(cmd).await?,
    }
    Ok(())
}

fn token_arg(s: &str) -> Result<&'static str> {
    match s.to_ascii_uppercase().as_str() {
        "ICX" => Ok("ICX"),
        "ETH" => Ok("ETH"),
        _ => anyhow::bail!("--from: expected ICX or ETH, got {s:?}"),
    }
}

async fn dex_cmd(cmd: DexCmd) -> Result<()> {
    use crate::commands::dex;
    match cmd {
        DexCmd::Price { endpoint } => print(&dex::price(&RpcClient::new(endpoint.rpc)).await?),
        DexCmd::Quote {
            from,
            amount,
            endpoint,
        } => {
            let from = token_arg(&from)?;
            let amount = wallet::parse_amount(&amount)?;
            print(&dex::quote(&RpcClient::new(endpoint.rpc), from, amount).await?)
        }
        DexCmd::Swap {
            from,
            amount,
            to,
            min_return,
            slippage_bps,
            keystore,
            password,
            eth,
            endpoint,
        } => {
            anyhow::ensure!(slippage_bps <= 10_000, "--slippage-bps: expected 0..=10000");
            let from = token_arg(&from)?;
            let amount = wallet::parse_amount(&amount)?;
            let rpc = RpcClient::new(endpoint.rpc);
            let min = match min_return {
                Some(m) => wallet::parse_amount(&m)?,
                None => {
                    let q = dex::quote(&rpc, from, amount).await?;
                    let q = nexus_proto::value::parse_u128(
                        "quote",
                        q["amount"].as_str().unwrap_or(""),
                    )?;
                    dex::min_from_quote(q, slippage_bps)
                }
            };
            let out = if from == "ICX" {
                let ks = keystore.context("selling ICX needs --keystore and --password")?;
                let key = wallet::load_key(&ks, &password.context("--password is required")?)?;
                dex::swap_icx(&rpc, &key, amount, &to, min).await?
            } else {
                let (url, reserve, key) = eth.get()?;
                dex::swap_eth(url, reserve, &key, amount, &to, min).await?
            };
            let mut out = out;
            out["minReturn"] = nexus_proto::value::format_int(min).into();
            print(&out)
        }
        DexCmd::Deposit { amount, to, eth } => {
            let (url, reserve, key) = eth.get()?;
            print(&dex::deposit_eth(url, reserve, &key, wallet::parse_amount(&amount)?, &to).await?)
        }
        DexCmd::AddLiquidity {
            signer,
            icx,
            eth,
            min_tokens,
            endpoint,
        } => {
            let key = wallet::load_key(&signer.keystore, &signer.password)?;
            print(
                &dex::add_liquidity(
                    &RpcClient::new(endpoint.rpc),
                    &key,
                    wallet::parse_amount(&icx)?,
                    wallet::parse_amount(&eth)?,
                    wallet::parse_amount(&min_tokens)?,
                )
                .await?,
            )
        }
        DexCmd::RemoveLiquidity {
            signer,
            tokens,
            eth_to,
            endpoint,
        } => {
            let key = wallet::load_key(&signer.keystore, &signer.password)?;
            print(
                &dex::remove_liquidity(
                    &RpcClient::new(endpoint.rpc),
                    &key,
                    wallet::parse_amount(&tokens)?,
                    &eth_to,
                )
                .await?,
            )
        }
    }
    Ok(())
}

async fn wallet_cmd(cmd: WalletCmd) -> Result<()> {
    match cmd {
        WalletCmd::Create { keystore, password } => {
            let a = wallet::create(&keystore, &password)?;
            println!("{a}");
        }
        WalletCmd::Balance { address, endpoint } => {
            let b = wallet::balance(&RpcClient::new(endpoint.rpc), &address).await?;
            println!("{} ICX ({b:#x} loop)", wallet::format_icx(b));
        }
        WalletCmd::Transfer {
            signer,
            to,
            value,
            endpoint,
        } => {
            let key = wallet::load_key(&signer.keystore, &signer.password)?;
            let to = Address::parse("--to", &to)?;
            let r = wallet::send(
                &RpcClient::new(endpoint.rpc),
                &key,
                to,
                wallet::parse_amount(&value)?,
                nexus_proto::TxData::None,
                Some(100_000),
            )
            .await?;
            print(&r);
        }
        WalletCmd::Call {
            to,
            method,
            params,
            keystore,
            password,
            endpoint,
        } => {
            let rpc = RpcClient::new(endpoint.rpc);
            let to = Address::parse("--to", &to)?;
            let out = match keystore {
                Some(ks) => {
                    let key = wallet::load_key(
                        &ks,
                        &password.context("--password is required with --keystore")?,
                    )?;
                    wallet::send(
                        &rpc,
                        &key,
                        to,
                        0,
                        wallet::call_data(&method, params.as_deref())?,
                        None,
                    )
                    .await?
                }
                None => wallet::query(&rpc, to, &method, params.as_deref()).await?,
            };
            print(&out);
        }
        WalletCmd::EthTransfer {
            eth_rpc,
            token_service,
            key,
            to,
            value,
        } => {
            let out = wallet::eth_transfer(
                &eth_rpc,
                &token_service,
                &key.secret()?,
                &to,
                wallet::parse_amount(&value)?,
            )
            .await?;
            print(&out);
        }
        WalletCmd::BtpTransfer {
            signer,
            to,
            value,
            endpoint,
        } => {
            let key = wallet::load_key(&signer.keystore, &signer.password)?;
            let r = wallet::send(
                &RpcClient::new(endpoint.rpc),
                &key,
                nexus_btp::BMC_ADDRESS,
                wallet::parse_amount(&value)?,
                wallet::call_data(
                    "transfer",
                    Some(&serde_json::json!({"_to": to}).to_string()),
                )?,
                None,
            )
            .await?;
            anyhow::ensure!(r["status"] == "0x1", "transfer failed: {}", r["failure"]);
            let sn = r["eventLogs"]
                .as_array()
                .and_then(|logs| {
                    logs.iter()
                        .find(|e| e["indexed"][0] == nexus_btp::token::TRANSFER_START_SIG)
                })
                .map(|e| e["indexed"][3].clone())
                .unwrap_or_default();
            print(&serde_json::json!({"txHash": r["txHash"], "sn": sn, "status": "sent"}));
        }
        WalletCmd::BtpStatus {
            sn,
            notary,
            endpoint,
        } => {
            let rpc = RpcClient::new(endpoint.rpc);
            let params = serde_json::json!({ "_sn": sn }).to_string();
            let m = wallet::query(
                &rpc,
                nexus_btp::BMC_ADDRESS,
                "getMessageStatus",
                Some(&params),
            )
            .await?;
            anyhow::ensure!(!m.is_null(), "no message {sn} was sent from this chain");
            let mut status = m["status"].as_str().unwrap_or("").to_string();
            if let (Some(url), "sent") = (notary, status.as_str()) {
                let s = wallet::query(
                    &RpcClient::new(url),
                    nexus_btp::NOTARY_ADDRESS,
                    "getStatus",
                    None,
                )
                .await?;
                let rx =
                    nexus_proto::value::parse_u128("rxSeq", s["rxSeq"].as_str().unwrap_or(""))?;
                let seq = nexus_proto::value::parse_u128("seq", m["seq"].as_str().unwrap_or(""))?;
                if rx >= seq {
                    status = "notarized".into();
                }
            }
            print(&serde_json::json!({"sn": sn, "seq": m["seq"], "status": status}));
        }
        WalletCmd::Tx { hash, endpoint } => {
            print(&wallet::tx(&RpcClient::new(endpoint.rpc), &hash).await?)
        }
    }
    Ok(())
}

/// An error with its causes, each said once: a node error that quotes its source (`storage:
/// <RocksDB's message>`) is not followed by the same message again.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::install_panic_hook();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = error_text(&e);
            eprintln!("error: {message}");
            if let Some(hint) = crate::error::operator_hint(&message) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::error_text;
    use anyhow::Context;

    #[test]
    fn each_cause_of_an_error_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "cannot listen on :1");
        let e = anyhow::Error::new(crate::error::NodeError::Io(io));
        assert_eq!(error_text(&e), "io: cannot listen on :1");
        let e = Err::<(), _>(e).context("starting the node").unwrap_err();
        assert_eq!(error_text(&e), "starting the node: io: cannot listen on :1");
    }
}
