//! A private network namespace for tests that run BPF programs with
//! BPF_PROG_TEST_RUN.
//!
//! Under test_run, `bpf_redirect`/`bpf_redirect_peer` only record their
//! target, but `bpf_clone_redirect` (the switch's flooding) really
//! transmits: on whatever device of the caller's namespace has the ifindex
//! the program picked. Run from the root namespace, a made-up port ifindex
//! could name one of the machine's real interfaces. So such tests run on a
//! thread that first moves into a fresh, unnamed network namespace
//! ([`in_private_netns`]) and give the program throwaway veth devices there
//! as its ports ([`add_veth_port`]). The namespace has no name and nothing
//! else holds it: it and its devices are destroyed by the kernel when the
//! thread ends, also when the test panics, so there is nothing to leak.

use std::cell::Cell;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

thread_local! {
    /// Set on the threads [`in_private_netns`] moved into a fresh namespace.
    static PRIVATE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` on a fresh thread inside a private network namespace that dies
/// with the thread. Commands spawned from `f` (`ip`, ...) run in it too.
/// A panic in `f` is passed on to the caller.
pub fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let outside = netns_id("/proc/thread-self/ns/net");
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare netns");
        assert_ne!(
            netns_id("/proc/thread-self/ns/net"),
            outside,
            "unshare left the thread in its namespace"
        );
        PRIVATE.with(|p| p.set(true));
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// (device, inode) of a namespace file, which identifies the namespace.
fn netns_id(path: &str) -> (u64, u64) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.dev(), m.ino())
}

/// Whether the calling thread runs inside [`in_private_netns`], in another
/// network namespace than the test process started in.
pub fn is_private_netns() -> bool {
    PRIVATE.with(Cell::get) && netns_id("/proc/thread-self/ns/net") != netns_id("/proc/self/ns/net")
}

/// Panics unless the calling thread is in a private namespace: a guard for
/// code that may transmit frames on devices chosen by ifindex.
pub fn assert_private_netns(what: &str) {
    assert!(
        is_private_netns(),
        "{what} may transmit frames: run it inside netlab_tests::private_netns::in_private_netns"
    );
}

/// `ip ARGS` in the calling thread's namespace, which must succeed.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates a veth pair `dev` / `<dev>-x`, both up, in the calling thread's
/// namespace (which must be private), `dev` with interface index `ifindex`
/// when given; returns `dev`'s ifindex. Frames sent out of `dev` land on its
/// peer, where nothing listens; the device counts what it transmitted and
/// sends nothing of its own.
pub fn add_veth_port(dev: &str, ifindex: Option<u32>) -> u32 {
    assert_private_netns("add_veth_port");
    let peer = format!("{dev}-x");
    let index = ifindex.map(|i| i.to_string());
    let mut args = vec!["link", "add", dev];
    if let Some(i) = &index {
        args.extend(["index", i.as_str()]);
    }
    args.extend(["type", "veth", "peer", "name", peer.as_str()]);
    ip(&args);
    // No IPv6 link-local address, hence no DAD, router solicitations or MLD
    // reports: the device transmits only what the test sends, so its
    // counters can be compared exactly.
    for d in [dev, peer.as_str()] {
        ip(&["link", "set", "dev", d, "addrgenmode", "none"]);
        ip(&["link", "set", d, "up"]);
    }
    let got = nix::net::if_::if_nametoindex(dev).expect("ifindex of a new device");
    if let Some(want) = ifindex {
        assert_eq!(got, want, "{dev} got another ifindex");
    }
    got
}

/// Packets `dev` transmitted, read in the calling thread's namespace.
pub fn tx_packets(dev: &str) -> u64 {
    let out = Command::new("ip")
        .args(["-j", "-s", "link", "show", "dev", dev])
        .output()
        .expect("run ip");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ip -j -s link show {dev}: {e}"));
    json[0]["stats64"]["tx"]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("no tx packet count for {dev}: {json}"))
}
