//! `netlab daemon --background` as the CLI promises it: detached, serving
//! the lab (it expires NAT flows), one per lab, and stopped by `netlab
//! down`, also when it was killed, is stuck, or a `down` was killed half
//! way. The leak check (`TestLab::leftovers`) looks for the lab's netlab
//! processes in /proc, so a daemon that outlives `down` fails it.
//!
//! Labs `tq<k>` on 10.118.<k>.0/24 (k = 20..), sandbox mode.

use std::net::SocketAddrV4;
use std::process::Stdio;
use std::time::Duration;

use netlab_common::counters::Counter;
use netlab_tests::netlab::daemon;
use netlab_tests::traffic::{UdpEchoServer, udp_echo, udp_socket, wait_until};
use netlab_tests::{INTERNET_ADDRESS, TestLab, describe};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn lab(k: u8, extra: &str) -> TestLab {
    TestLab::in_net(&format!("q{k}"), 118, k, 1, extra)
}

/// Whether `pid` is a live process (not gone, not a zombie waiting for
/// its parent).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// `netlab daemon --background`: the pid it announces, checked against the
/// pid file.
fn start_background(lab: &TestLab, interval: &str) -> i32 {
    let out = lab.ok(&["daemon", "--background", "--interval", interval]);
    let text = String::from_utf8_lossy(&out.stdout);
    let pid: i32 = text
        .split("(pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {}", describe(&out)));
    assert_eq!(daemon::running_pid(&lab.name), Some(pid), "{text}");
    assert!(alive(pid), "the background daemon {pid} is not running");
    pid
}

/// Stops a daemon this test started, whatever happened, by its pid.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
        }
    }
}

#[test]
fn daemon_background_serves_the_lab_until_down_stops_it() {
    let lab = lab(20, "[nat]\nudp_timeout = 1");
    lab.ok(&["up", "--datapath", "ebpf"]);
    let pid = start_background(&lab, "0.2");
    let _guard = KillOnDrop(pid);
    // Detached: its own session, not the CLI's child any more.
    let sid = nix::unistd::getsid(Some(Pid::from_raw(pid))).expect("getsid");
    assert_eq!(
        sid.as_raw(),
        pid,
        "the background daemon has no session of its own"
    );
    // One per lab: a second start names the running one.
    assert_eq!(start_background(&lab, "0.2"), pid);

    // It serves the lab: a UDP flow through the NAT expires after the
    // lab file's 1 s timeout, which only the daemon's sweep does.
    let server = UdpEchoServer::start(&lab.inet_ns(), SocketAddrV4::new(INTERNET_ADDRESS, 7000));
    let sock = udp_socket(&lab.ns(1), SocketAddrV4::new(lab.ip(1), 0));
    assert!(udp_echo(
        &sock,
        server.addr,
        b"flow",
        Duration::from_secs(5)
    ));
    // (Counted rather than looked up: the daemon may expire it at once.)
    assert_eq!(
        lab.counter(Counter::NatCreated),
        1,
        "the flow was not translated"
    );
    assert!(
        wait_until(Duration::from_secs(20), || lab.nat_flows().is_empty()),
        "the background daemon did not expire the idle flow: {:?}",
        lab.nat_flows()
    );

    let out = lab.ok(&["down"]);
    assert!(
        !alive(pid),
        "`netlab down` left the daemon {pid} running: {}",
        describe(&out)
    );
    lab.assert_nothing_left("after down with a background daemon");
    drop(server);
}

/// A daemon killed with SIGKILL leaves a stale pid file; one that is stuck
/// (SIGSTOP: deaf to SIGTERM) must still go; and a `down` killed half way
/// may leave the daemon running. In every case the next `down` leaves no
/// process, pid file or log behind.
#[test]
fn down_leaves_no_daemon_after_kills_and_a_stuck_daemon() {
    let lab = lab(21, "");
    lab.ok(&["up", "--datapath", "ebpf"]);

    // 1. The daemon dies by SIGKILL: down cleans its pid file and log.
    let pid = start_background(&lab, "0.2");
    let guard = KillOnDrop(pid);
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("SIGKILL the daemon");
    assert!(wait_until(Duration::from_secs(10), || !alive(pid)));
    assert!(
        daemon::pid_path(&lab.name).exists(),
        "a stale pid file stays"
    );
    assert_eq!(daemon::running_pid(&lab.name), None);
    drop(guard);
    lab.ok(&["down"]);
    lab.assert_nothing_left("after SIGKILL of the daemon, then down");

    // 2. A stuck daemon: down SIGKILLs it after SIGTERM went unheard.
    lab.ok(&["up", "--datapath", "ebpf"]);
    let pid = start_background(&lab, "0.2");
    let _guard = KillOnDrop(pid);
    kill(Pid::from_raw(pid), Signal::SIGSTOP).expect("SIGSTOP the daemon");
    lab.ok(&["down"]);
    assert!(!alive(pid), "down left the stuck daemon {pid}");
    lab.assert_nothing_left("after down with a stuck daemon");

    // 3. `down` killed with SIGKILL at points spread over its run, then a
    // `down` that finishes.
    for delay_ms in [0u64, 5, 20, 60, 150] {
        lab.ok(&["up", "--datapath", "ebpf"]);
        let pid = start_background(&lab, "0.2");
        let _guard = KillOnDrop(pid);
        let mut down = lab
            .command(&["down"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start down");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = down.kill();
        let _ = down.wait();
        let out = lab.ok(&["down"]);
        assert!(
            !alive(pid),
            "down after a killed down ({delay_ms} ms) left the daemon {pid}: {}",
            describe(&out)
        );
        lab.assert_nothing_left(&format!("after a down killed at {delay_ms} ms, then down"));
    }
}
