//! The `nexus` command: node, devnet, wallet and benchmark.

fn main() -> std::process::ExitCode {
    return_large_buffers_to_the_system();
    nexus::commands::cli::main()
}

/// Makes glibc serve every allocation of 4 MiB or more with its own mapping, returned to the
/// system when freed. By default glibc raises that threshold to the largest block freed so far
/// (up to 32 MiB), after which multi-megabyte gossip payloads (a peer may send up to 16 MiB) are
/// carved from the heap and stay resident after use: under a stream of oversized proposals a
/// validator held twice the memory it needed.
///
/// Smaller blocks stay in the heap, and glibc keeps up to 64 MiB of free memory at the top of
/// each heap instead of returning everything past 128 KiB: RocksDB's memtable blocks and filters
/// (sized under the threshold in `ledger/storage.rs`) and write batches are freed and allocated
/// again every few blocks, and each page returned and taken back costs a page fault that zeroes
/// it (some 15,000 a second at 10 million accounts). A block's write batch grows to 1-2 MiB at
/// 10 million accounts (more in blocks of thousands of transfers): with the threshold at 1 MiB
/// each block mapped it anew and faulted in every page it wrote.
#[allow(unsafe_code)] // the one unsafe call in the workspace: glibc has no safe binding for it
fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any thread starts.
    unsafe {
        libc::mallopt(
            libc::M_MMAP_THRESHOLD,
            nexus::MAPPED_ALLOCATION_BYTES as i32,
        );
        libc::mallopt(libc::M_TRIM_THRESHOLD, nexus::KEPT_FREE_HEAP_BYTES as i32);
    }
}
