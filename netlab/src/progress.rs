//! Progress of long runs (bench, and the test suite's soak and fuzzer).
//!
//! On a terminal: an indicatif bar on stderr. Anywhere else (a CI log, a
//! pipe, a file) indicatif draws nothing at all, which made a 12-minute
//! bench look hung; there a plain line goes to stderr every few seconds
//! instead, from a small thread so that a line appears even while one step
//! runs for long: `bench: 12/60 (20%), 1m05s: round 3: ebpf udp_64`.

use std::{
    io::{IsTerminal, Write},
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};

/// How often the plain line is printed.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// A progress report; clones share it.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

enum Inner {
    Bar(ProgressBar),
    Plain(Mutex<Plain>),
}

struct Plain {
    what: String,
    pos: u64,
    len: Option<u64>,
    msg: String,
    start: Instant,
    done: bool,
}

impl Plain {
    fn line(&self) -> String {
        let mut s = format!("{}: ", self.what);
        match self.len {
            Some(len) if len > 0 => {
                s.push_str(&format!("{}/{len} ({}%), ", self.pos, self.pos * 100 / len))
            }
            _ => {}
        }
        s.push_str(&elapsed(self.start.elapsed()));
        if !self.msg.is_empty() {
            s.push_str(": ");
            s.push_str(&self.msg);
        }
        s
    }
}

/// `45s`, `3m07s`, `1h02m`.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

impl Progress {
    /// `what` names the run in plain lines; `len` is the number of steps,
    /// if known. A bar when stderr is a terminal, plain lines otherwise.
    pub fn new(what: &str, len: Option<u64>) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = match len {
                Some(len) => ProgressBar::new(len).with_style(
                    ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed_precise} {msg}")
                        .expect("valid progress template"),
                ),
                None => ProgressBar::new_spinner(),
            };
            Self {
                inner: Arc::new(Inner::Bar(bar)),
            }
        } else {
            Self::plain(what, len, PLAIN_EVERY)
        }
    }

    /// Plain lines to stderr every `every`, whatever stderr is.
    pub fn plain(what: &str, len: Option<u64>, every: Duration) -> Self {
        Self::plain_to(what, len, every, Box::new(std::io::stderr()))
    }

    /// Plain lines to `sink` every `every`.
    pub fn plain_to(
        what: &str,
        len: Option<u64>,
        every: Duration,
        mut sink: Box<dyn std::io::Write + Send>,
    ) -> Self {
        let inner = Arc::new(Inner::Plain(Mutex::new(Plain {
            what: what.to_string(),
            pos: 0,
            len,
            msg: String::new(),
            start: Instant::now(),
            done: false,
        })));
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        // The thread ends once the run is finished or dropped (it holds
        // only a weak reference).
        std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(inner) = weak.upgrade() else { return };
                    let Inner::Plain(p) = &*inner else { return };
                    let p = p.lock().unwrap_or_else(|e| e.into_inner());
                    if p.done {
                        return;
                    }
                    let _ = writeln!(sink, "{}", p.line());
                }
            })
            .expect("spawn the progress thread");
        Self { inner }
    }

    fn with_plain(&self, f: impl FnOnce(&mut Plain)) {
        if let Inner::Plain(p) = &*self.inner {
            f(&mut p.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    pub fn inc(&self, n: u64) {
        match &*self.inner {
            Inner::Bar(b) => b.inc(n),
            Inner::Plain(_) => self.with_plain(|p| p.pos += n),
        }
    }

    pub fn set_position(&self, pos: u64) {
        match &*self.inner {
            Inner::Bar(b) => b.set_position(pos),
            Inner::Plain(_) => self.with_plain(|p| p.pos = pos),
        }
    }

    pub fn set_message(&self, msg: impl Into<String>) {
        let msg = msg.into();
        match &*self.inner {
            Inner::Bar(b) => b.set_message(msg),
            Inner::Plain(_) => self.with_plain(|p| p.msg = msg),
        }
    }

    /// A line above the bar (or just a line).
    pub fn println(&self, line: impl AsRef<str>) {
        match &*self.inner {
            Inner::Bar(b) => b.println(line.as_ref()),
            Inner::Plain(_) => eprintln!("{}", line.as_ref()),
        }
    }

    /// The current plain line (None on a terminal).
    pub fn line(&self) -> Option<String> {
        match &*self.inner {
            Inner::Bar(_) => None,
            Inner::Plain(p) => Some(p.lock().unwrap_or_else(|e| e.into_inner()).line()),
        }
    }

    pub fn finish_and_clear(&self) {
        match &*self.inner {
            Inner::Bar(b) => b.finish_and_clear(),
            Inner::Plain(_) => self.with_plain(|p| p.done = true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_say_where_the_run_is() {
        let p = Progress::plain("bench", Some(60), Duration::from_secs(3600));
        p.inc(12);
        p.set_message("round 3: ebpf udp_64");
        let line = p.line().unwrap();
        assert!(
            line.starts_with("bench: 12/60 (20%), 0s: round 3: ebpf udp_64"),
            "{line}"
        );
        let open = Progress::plain("soak", None, Duration::from_secs(3600));
        open.set_message("10 s of 60");
        assert_eq!(open.line().unwrap(), "soak: 0s: 10 s of 60");
        p.finish_and_clear();
    }

    /// A sink the test can read.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    #[test]
    fn plain_lines_come_by_themselves_until_the_run_finishes() {
        let out = Shared::default();
        let every = Duration::from_millis(20);
        let p = Progress::plain_to("fuzz port", Some(10), every, Box::new(out.clone()));
        p.inc(3);
        // Nothing else happens, yet lines come (a long step is not silence).
        let deadline = Instant::now() + Duration::from_secs(10);
        while out.lines().len() < 2 && Instant::now() < deadline {
            std::thread::sleep(every);
        }
        let lines = out.lines();
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(lines[0].starts_with("fuzz port: 3/10 (30%)"), "{lines:?}");
        p.finish_and_clear();
        // At most the line being written when it finished.
        std::thread::sleep(every * 5);
        let after = out.lines().len();
        std::thread::sleep(every * 5);
        assert_eq!(out.lines().len(), after, "lines after finish");
    }

    #[test]
    fn elapsed_reads_like_a_clock() {
        assert_eq!(elapsed(Duration::from_secs(45)), "45s");
        assert_eq!(elapsed(Duration::from_secs(187)), "3m07s");
        assert_eq!(elapsed(Duration::from_secs(3720)), "1h02m");
    }
}
