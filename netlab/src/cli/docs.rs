//! `netlab completions SHELL` and `netlab man`: shell completion scripts
//! (clap_complete) and man pages (clap_mangen), generated from the CLI's
//! own definition so they never drift from it. `cargo xtask man` writes
//! the pages with `netlab man --dir`.

use std::{io::Write, path::Path};

use anyhow::Context as _;
use clap::CommandFactory;

use super::args::Cli;

/// Writes the completion script for `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "netlab", out);
}

/// The top-level man page (roff) to `out`.
pub fn man_page(out: &mut dyn Write) -> anyhow::Result<()> {
    clap_mangen::Man::new(Cli::command())
        .render(out)
        .context("cannot render the man page")
}

/// `netlab.1` and one page per subcommand (`netlab-up.1`, ...) into `dir`.
pub fn man_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write the man pages to {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_name_every_subcommand() {
        let mut out = Vec::new();
        completions(clap_complete::Shell::Bash, &mut out);
        let script = String::from_utf8(out).unwrap();
        for sub in ["up", "down", "status", "nat", "fdb", "map", "completions"] {
            assert!(
                script.contains(sub),
                "{sub} missing from the bash completions"
            );
        }
    }

    #[test]
    fn the_man_page_is_roff_with_the_commands() {
        let mut out = Vec::new();
        man_page(&mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH netlab"),
            "{page}"
        );
        assert!(page.contains("completions"));
    }
}
