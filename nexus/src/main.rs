//! The `nexus` command: node, devnet, wallet and benchmark.

/// jemalloc serves every allocation of the process, Rust's and RocksDB's alike (it replaces
/// `malloc` itself, so RocksDB's C++ allocations reach it too). With glibc's allocator, malloc
/// and free took 10.6% of a node's CPU at 10 million accounts (a profile at saturation) and
/// some 10% of a validator's; with jemalloc 2.6%. jemalloc returns freed memory to the system
/// gradually over 10 s, and allocations from 8 MiB (`oversize_threshold`; a peer's proposal may
/// be 16 MiB) as soon as they are freed, so oversized gossip does not stay resident.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    nexus::commands::cli::main()
}
