//! A node raises its soft limit of open files to the hard limit when it starts (each connection
//! and each RocksDB table file takes one; a soft limit of 1,024 is common).

use nix::sys::resource::{getrlimit, setrlimit, Resource};

#[test]
fn the_soft_limit_of_open_files_is_raised_to_the_hard_limit() {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if hard <= 256 {
        eprintln!("hard limit {hard}: nothing to raise here");
        return;
    }
    setrlimit(Resource::RLIMIT_NOFILE, 256, hard).expect("lower the soft limit");
    nexus::node::raise_open_files_limit();
    let (soft, after) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert_eq!(after, hard, "the hard limit is left as it was");
    assert_eq!(soft, hard.min(1 << 20), "soft limit {soft}, hard {hard}");
}
