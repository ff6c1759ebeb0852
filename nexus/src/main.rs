//! The `nexus` command: node, devnet, wallet and benchmark.

/// jemalloc serves every allocation of the process, Rust's and RocksDB's alike (it replaces
/// `malloc` itself, so RocksDB's C++ allocations reach it too). Under glibc's allocator a node
/// faulted in fresh pages for much of what it allocated and freed again every block: the write
/// batch of a block (1-2 MiB at 10 million accounts) was carved from wherever the heap had room
/// and faulted in page by page, 8 µs per transfer at 10 million accounts, and malloc and free
/// took some 10% of a validator's CPU. jemalloc reuses memory freed within the last 10 s without
/// returning it, and returns allocations from 8 MiB (`oversize_threshold`; a peer's proposal
/// may be 16 MiB) to the system as soon as they are freed, so oversized gossip does not stay
/// resident.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    nexus::commands::cli::main()
}
