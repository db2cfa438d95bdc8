//! The CNI plugin binary (see `netlab::cni`).
//!
//! Runtimes execute a CNI plugin without arguments (everything comes in
//! `CNI_*` variables and on stdin). With arguments, `netlab-cni` is the
//! netlab CLI: the control loop that ADD starts for a lab it created is
//! `netlab daemon`, spawned as the current executable, and only
//! `netlab-cni` is installed in the runtime's plugin directory.
fn main() -> std::process::ExitCode {
    if std::env::args_os().len() > 1 {
        return netlab::cli::main();
    }
    netlab::cni::main()
}
