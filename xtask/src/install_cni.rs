//! `cargo xtask install-cni`: builds `netlab-cni`, installs it where
//! container runtimes look for CNI plugins, and writes a network
//! configuration list naming a netlab lab.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{cargo, status};

/// Where runtimes look by default (podman's `cni_plugin_dirs`,
/// containerd's `bin_dir`, kubelet's `--cni-bin-dir`).
pub const DEFAULT_BIN_DIR: &str = "/opt/cni/bin";
/// Where they read network configurations by default.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";

pub struct Options {
    pub dir: PathBuf,
    pub conf_dir: PathBuf,
    pub lab: String,
    pub lab_file: Option<PathBuf>,
}

/// The configuration list for lab `lab`. cniVersion 1.0.0: the newest that
/// podman 4's libcni (1.1) speaks; the plugin also answers 0.4.0 and 1.1.0.
pub fn conflist(lab: &str, lab_file: Option<&Path>) -> String {
    let mut plugin = serde_json::json!({
        "type": "netlab-cni",
        "lab": lab,
        "capabilities": { "portMappings": true },
    });
    if let Some(f) = lab_file {
        plugin["labFile"] = serde_json::json!(f);
    }
    let list = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": lab,
        "plugins": [plugin],
    });
    serde_json::to_string_pretty(&list).expect("a conflist serializes") + "\n"
}

pub fn run(root: &Path, opts: &Options) -> Result<()> {
    status(cargo(root).args(["build", "--release", "-p", "netlab", "--bin", "netlab-cni"]))?;
    let built = root.join("target/release/netlab-cni");
    std::fs::create_dir_all(&opts.dir)
        .with_context(|| format!("cannot create {}", opts.dir.display()))?;
    // Copy then rename: a runtime executing the plugin meanwhile sees the
    // old binary or the new one, never half of one.
    let target = opts.dir.join("netlab-cni");
    let tmp = opts.dir.join(".netlab-cni.new");
    std::fs::copy(&built, &tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, &target)
        .with_context(|| format!("cannot replace {}", target.display()))?;
    println!("installed {}", target.display());

    std::fs::create_dir_all(&opts.conf_dir)
        .with_context(|| format!("cannot create {}", opts.conf_dir.display()))?;
    let file = opts.conf_dir.join(format!("{}.conflist", opts.lab));
    let lab_file = opts
        .lab_file
        .as_deref()
        .map(std::path::absolute)
        .transpose()?;
    std::fs::write(&file, conflist(&opts.lab, lab_file.as_deref()))
        .with_context(|| format!("cannot write {}", file.display()))?;
    println!("wrote {} (network {})", file.display(), opts.lab);
    Ok(())
}
