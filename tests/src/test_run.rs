//! Running a TC program under BPF_PROG_TEST_RUN: one wrapper for every
//! program test and the fuzzer.

use aya::programs::{ProgramError, SchedClassifier, TestRun, TestRunOptions, TestRunResult};

/// Offset of `ingress_ifindex` in the UAPI `struct __sk_buff` (len,
/// pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci,
/// vlan_proto, priority: nine u32 before it). The context we pass ends
/// after `ifindex` (offset 40); the kernel zero-fills the rest.
pub const SKB_INGRESS_IFINDEX: usize = 36;
pub const SKB_CTX_LEN: usize = 44;

/// Room for a program to grow the frame (none of netlab's do today).
const OUT_SLACK: usize = 512;

/// Runs `prog` on `frame`; with `ingress`, as if the frame entered on that
/// ifindex (`__sk_buff.ingress_ifindex`, which is how the port program
/// finds its port). Returns (verdict, the frame as the program left it).
pub fn test_run(
    prog: &SchedClassifier,
    frame: &[u8],
    ingress: Option<u32>,
) -> Result<(u32, Vec<u8>), ProgramError> {
    let mut ctx = [0u8; SKB_CTX_LEN];
    if let Some(ifindex) = ingress {
        ctx[SKB_INGRESS_IFINDEX..SKB_INGRESS_IFINDEX + 4].copy_from_slice(&ifindex.to_ne_bytes());
    }
    run_packet(prog, frame, ingress.map(|_| &ctx[..]))
}

/// Runs an XDP program on `frame`; with `ingress`, as if it arrived on
/// that ifindex (`xdp_md.ingress_ifindex`, queue 0: the device must exist
/// in the caller's namespace). Returns (verdict, the frame as the program
/// left it). Redirects and XDP_TX only return their verdict here.
pub fn test_run_xdp(
    prog: &aya::programs::Xdp,
    frame: &[u8],
    ingress: Option<u32>,
) -> Result<(u32, Vec<u8>), ProgramError> {
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
    // rx_queue_index, egress_ifindex. The kernel wants data_end = the
    // frame's length and no metadata.
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
    if let Some(ifindex) = ingress {
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    }
    run_packet(prog, frame, ingress.map(|_| &ctx[..]))
}

/// One packet through a packet program (TC or XDP), with the context
/// `ctx` when given: (verdict, the frame as the program left it).
fn run_packet<P>(prog: &P, frame: &[u8], ctx: Option<&[u8]>) -> Result<(u32, Vec<u8>), ProgramError>
where
    P: for<'a> TestRun<Opts<'a> = TestRunOptions<'a>, Result = TestRunResult>,
{
    let mut out = vec![0u8; frame.len() + OUT_SLACK];
    let res = prog.test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ctx_in: ctx,
        ..TestRunOptions::default()
    })?;
    out.truncate(res.data_size_out as usize);
    Ok((res.return_value, out))
}
