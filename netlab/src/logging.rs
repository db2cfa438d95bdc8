//! The logger behind the library's `log::` calls (a replaced stale pin, a
//! daemon that could not be stopped, ...): messages go to stderr as
//! `netlab: LEVEL: message`.
//!
//! Warnings and errors show by default; `-v` adds info, `-vv` debug,
//! `-vvv` trace, `-q` keeps errors only. `RUST_LOG` (env_logger's syntax,
//! e.g. `RUST_LOG=netlab::nat=debug`) takes precedence over the flags, so a
//! user can aim at one module.

use std::io::Write;

use log::LevelFilter;

/// The level the flags ask for.
pub fn level(verbose: u8, quiet: bool) -> LevelFilter {
    if quiet {
        return LevelFilter::Error;
    }
    match verbose {
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Installs the logger (once; a second call is ignored).
pub fn init(verbose: u8, quiet: bool) {
    let mut b = env_logger::Builder::new();
    b.filter_level(level(verbose, quiet))
        // RUST_LOG, when set, overrides the level chosen above.
        .parse_default_env()
        .format(|buf, record| {
            writeln!(
                buf,
                "netlab: {}: {}",
                record.level().as_str().to_lowercase(),
                record.args()
            )
        });
    let _ = b.try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_pick_the_level() {
        assert_eq!(level(0, false), LevelFilter::Warn);
        assert_eq!(level(1, false), LevelFilter::Info);
        assert_eq!(level(2, false), LevelFilter::Debug);
        assert_eq!(level(9, false), LevelFilter::Trace);
        assert_eq!(level(0, true), LevelFilter::Error);
    }
}
