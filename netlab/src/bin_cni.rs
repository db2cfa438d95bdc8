//! The CNI plugin binary (see `netlab::cni`).
fn main() -> std::process::ExitCode {
    netlab::cni::main()
}
