#![no_std]
// This library target exists only so that `netlab` can build-depend on this
// crate (cargo then rebuilds `netlab` when the programs change). The programs
// themselves live in the `netlab` binary target (src/main.rs).
