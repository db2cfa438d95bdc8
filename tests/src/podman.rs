//! Real podman on the CNI plugin, with nothing of the machine's container
//! setup involved: a temporary containers.conf (passed with
//! `CONTAINERS_CONF`) selects the CNI backend with the plugin and the
//! network configuration in a temporary directory, runc with cgroupfs, and
//! ulimits this VM accepts; storage, run and tmp directories are temporary
//! too (`--root`, `--runroot`, `--tmpdir`), and containers run from a
//! busybox-static tree (`--rootfs`), since no registry is reachable.
//! [`Podman`] removes every container and the whole directory on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cni::cni_bin;
use crate::{describe, run};

/// Applets linked in the busybox root filesystem.
const APPLETS: &[&str] = &["sh", "ping", "httpd", "sleep", "ip", "wget", "cat"];

pub struct Podman {
    pub dir: PathBuf,
}

impl Podman {
    /// A podman set-up under `/tmp/netlab-c12-<short>` whose only network
    /// config is `conflist` (the plugin's configuration list, written as
    /// `<network>.conflist`).
    pub fn new(short: &str, network: &str, conflist: &str) -> Self {
        let dir = PathBuf::from(format!("/tmp/netlab-c12-{short}"));
        let p = Self { dir };
        p.remove_all();
        let _ = std::fs::remove_dir_all(&p.dir);
        for sub in ["cni-bin", "net.d", "rootfs"] {
            std::fs::create_dir_all(p.dir.join(sub)).expect("create the podman directories");
        }
        std::fs::copy(cni_bin(), p.dir.join("cni-bin/netlab-cni")).expect("copy netlab-cni");
        std::fs::write(p.dir.join(format!("net.d/{network}.conflist")), conflist)
            .expect("write the conflist");
        std::fs::write(
            p.dir.join("containers.conf"),
            format!(
                "[containers]\n\
                 default_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]\n\
                 [engine]\n\
                 runtime = \"runc\"\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"none\"\n\
                 [network]\n\
                 network_backend = \"cni\"\n\
                 cni_plugin_dirs = [\"{0}/cni-bin\"]\n\
                 network_config_dir = \"{0}/net.d\"\n",
                p.dir.display()
            ),
        )
        .expect("write containers.conf");
        make_rootfs(&p.dir.join("rootfs"));
        p
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// `podman ARGS` with the temporary configuration and storage.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(&mut self.command(args))
    }

    /// Runs podman and asserts success; returns stdout, trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "podman {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Removes every container of this set-up (never any other: the
    /// storage root is ours).
    fn remove_all(&self) {
        if self.dir.join("root").exists() {
            let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.remove_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A root filesystem of busybox-static and its applets, with a page for
/// `httpd` under /www.
fn make_rootfs(root: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "www"] {
        std::fs::create_dir_all(root.join(d)).expect("create the rootfs");
    }
    let busybox = which_busybox();
    std::fs::copy(&busybox, root.join("bin/busybox")).expect("copy busybox");
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).expect("link an applet");
    }
    std::fs::write(
        root.join("www/index.html"),
        "hello from a netlab container\n",
    )
    .expect("write the page");
}

fn which_busybox() -> PathBuf {
    ["/usr/bin/busybox", "/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("busybox-static is not installed (cargo xtask setup installs it)")
}
