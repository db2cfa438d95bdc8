use which::which;

/// The BPF target links with `bpf-linker`, an undeclared dependency: rebuild
/// when the binary changes (for example after `cargo xtask setup` rebuilt it
/// for a new nightly).
fn main() {
    let bpf_linker = which("bpf-linker").expect("bpf-linker not found: run `cargo xtask setup`");
    println!("cargo:rerun-if-changed={}", bpf_linker.display());
}
