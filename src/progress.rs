//! Progress during a run: a progress bar on a terminal, plain lines in logs.
//!
//! - On a terminal (stderr is a TTY, Unix): an indicatif bar with the current benchmark, the
//!   step (compiling, verifying, measuring a variant), the elapsed time and an ETA; each
//!   finished variant's line is printed above the bar. Criterion's own report (its
//!   "Benchmarking ..." and `time: [...]` lines) is silenced while it measures, since it
//!   would tear the bar apart.
//! - Elsewhere (CI logs, pipes): plain lines, `[i/n] benchmark (elapsed ..)` and one line
//!   per variant, criterion's report silenced too.
//! - `--verbose`: plain lines plus criterion's own report (its statistics, outliers and
//!   baseline comparisons). `cargo bench` runs this way, as criterion's users expect.
//! - `--quiet`: nothing while running; the tables at the end still print.

use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How much a run says while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// No progress output at all.
    Quiet,
    /// A progress bar on a terminal, plain lines elsewhere; criterion's report silenced.
    Normal,
    /// Plain lines and criterion's own report.
    #[default]
    Verbose,
}

impl Verbosity {
    /// From the `--quiet` / `--verbose` flags of `priceperf run`.
    pub fn from_flags(quiet: bool, verbose: bool) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, true) => Verbosity::Verbose,
            (false, false) => Verbosity::Normal,
        }
    }
}

/// How progress is shown, decided once per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    Quiet,
    /// One line per benchmark and per variant on stderr.
    Lines,
    /// The bar (stderr is a terminal).
    Bar,
}

impl Display {
    /// The display for a verbosity on this process's stderr.
    pub fn choose(verbosity: Verbosity) -> Display {
        match verbosity {
            Verbosity::Quiet => Display::Quiet,
            Verbosity::Verbose => Display::Lines,
            Verbosity::Normal => {
                let term = std::io::stderr().is_terminal()
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
                    && std::env::var_os("PRICEPERF_NO_PROGRESS_BAR").is_none();
                // The bar needs criterion silenced, which needs dup2.
                if term && cfg!(unix) {
                    Display::Bar
                } else {
                    Display::Lines
                }
            }
        }
    }
}

/// The progress reporter of one run. While it lives it is also the process's active
/// reporter, so code deep in the run loop can post a step ([`step`]) and the Ctrl-C handler
/// a message ([`notice`]) without a handle.
#[derive(Debug)]
pub struct Progress {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    display: Display,
    verbosity: Verbosity,
    total: usize,
    start: Instant,
    bar: Option<ProgressBar>,
    /// A duplicate of stderr taken before any silencing: plain lines stay visible while
    /// criterion is silenced.
    err: Mutex<Option<std::fs::File>>,
}

static ACTIVE: Mutex<Option<Arc<Inner>>> = Mutex::new(None);

impl Progress {
    /// A reporter for `total` benchmarks, showing what `verbosity` asks for on this stderr.
    pub fn new(verbosity: Verbosity, total: usize) -> Progress {
        Progress::with_display(verbosity, Display::choose(verbosity), total)
    }

    /// A reporter with an explicit display (tests, or callers that know better).
    pub fn with_display(verbosity: Verbosity, display: Display, total: usize) -> Progress {
        let bar = (display == Display::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total as u64), bar_target());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:24.cyan/blue} {pos}/{len} {prefix}  {wide_msg}  ETA {eta}",
                )
                .expect("the progress template is valid")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let inner = Arc::new(Inner {
            display,
            verbosity,
            total,
            start: Instant::now(),
            bar,
            err: Mutex::new(stderr_dup()),
        });
        *lock(&ACTIVE) = Some(inner.clone());
        Progress { inner }
    }

    pub fn display(&self) -> Display {
        self.inner.display
    }

    /// Benchmark `index` (0-based) of the run starts.
    pub fn benchmark(&self, index: usize, id: &str) {
        let p = &self.inner;
        match p.display {
            Display::Quiet => {}
            Display::Lines => p.write_line(&format!(
                "[{}/{}] {id} (elapsed {:.0} s)",
                index + 1,
                p.total,
                p.start.elapsed().as_secs_f64()
            )),
            Display::Bar => {
                if let Some(bar) = &p.bar {
                    // A heading in the scrollback for the variant lines that follow.
                    bar.println(format!("[{}/{}] {id}", index + 1, p.total));
                    bar.set_position(index as u64);
                    bar.set_prefix(id.to_string());
                    bar.set_message("");
                }
            }
        }
    }

    /// What the current benchmark is doing now, e.g. `("tiled_8x8", "verifying")`.
    pub fn step(&self, variant: &str, what: &str) {
        if let Some(bar) = &self.inner.bar {
            bar.set_message(format!("{variant}: {what}"));
        }
    }

    /// A finished variant's line (`report::kernel_line`), indented under its benchmark.
    pub fn row(&self, line: &str) {
        self.line(&format!("    {line}"));
    }

    /// A message every non-quiet display shows (above the bar on a terminal).
    pub fn line(&self, text: &str) {
        self.inner.line(text);
    }

    /// The current benchmark finished.
    pub fn benchmark_done(&self) {
        if let Some(bar) = &self.inner.bar {
            bar.inc(1);
        }
    }

    /// The run's benchmarks are over: remove the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.inner.bar {
            bar.finish_and_clear();
        }
    }

    /// Keep criterion's own report off the terminal until the guard drops, unless
    /// `--verbose` asked for it. `None` when nothing is silenced.
    pub fn silence_criterion(&self) -> Option<Silence> {
        if self.inner.verbosity == Verbosity::Verbose {
            return None;
        }
        Silence::new()
    }
}

impl Inner {
    fn line(&self, text: &str) {
        match self.display {
            Display::Quiet => {}
            Display::Lines => self.write_line(text),
            Display::Bar => match &self.bar {
                Some(bar) if !bar.is_finished() => bar.println(text),
                _ => self.write_line(text),
            },
        }
    }

    fn write_line(&self, text: &str) {
        use std::io::Write as _;
        match lock(&self.err).as_mut() {
            Some(f) => {
                let _ = writeln!(f, "{text}");
            }
            None => eprintln!("{text}"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
        let mut active = lock(&ACTIVE);
        if active.as_ref().is_some_and(|a| Arc::ptr_eq(a, &self.inner)) {
            *active = None;
        }
    }
}

/// Run `f` with stdout and stderr silenced unless `verbosity` is verbose: for criterion's
/// chatter outside a run's loop ("Gnuplot not found" when it is created).
pub fn quietly<T>(verbosity: Verbosity, f: impl FnOnce() -> T) -> T {
    let _guard = (verbosity != Verbosity::Verbose)
        .then(Silence::new)
        .flatten();
    f()
}

/// Post a step of the current benchmark to the active reporter (see [`Progress::step`]).
pub fn step(variant: &str, what: &str) {
    if let Some(p) = lock(&ACTIVE).as_ref() {
        if let Some(bar) = &p.bar {
            bar.set_message(format!("{variant}: {what}"));
        }
    }
}

/// A message that must be seen even while criterion is silenced (the Ctrl-C handler's):
/// through the active reporter, or stderr when there is none. Shown even with `--quiet`.
pub fn notice(text: &str) {
    let active = lock(&ACTIVE).clone();
    match active {
        Some(p) if p.display == Display::Bar => p.line(text),
        Some(p) => p.write_line(text),
        None => eprintln!("{text}"),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(unix)]
fn stderr_dup() -> Option<std::fs::File> {
    use std::os::fd::AsFd as _;
    std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::fs::File::from)
}

#[cfg(not(unix))]
fn stderr_dup() -> Option<std::fs::File> {
    None
}

/// The bar draws on a duplicate of stderr taken before any silencing, so it stays visible
/// while stdout and stderr point at /dev/null.
#[cfg(unix)]
fn bar_target() -> ProgressDrawTarget {
    match (stderr_dup(), stderr_dup()) {
        (Some(r), Some(w)) => ProgressDrawTarget::term(console::Term::read_write_pair(r, w), 10),
        _ => ProgressDrawTarget::stderr(),
    }
}

#[cfg(not(unix))]
fn bar_target() -> ProgressDrawTarget {
    ProgressDrawTarget::stderr()
}

/// While alive, the process's stdout and stderr go to /dev/null (Unix); when the last
/// guard drops they are put back. Criterion prints through `println!`/`eprintln!` with no
/// switch to turn its report off, so this is the only way to keep it quiet. Guards nest
/// (and may overlap across threads): only the first redirects, only the last restores.
pub struct Silence {
    _private: (),
}

/// The saved originals of fds 1 and 2, and how many guards are alive.
#[cfg(unix)]
static SILENCED: Mutex<Option<(usize, [std::os::fd::OwnedFd; 2])>> = Mutex::new(None);

impl Silence {
    #[cfg(unix)]
    fn new() -> Option<Silence> {
        use std::io::Write as _;
        use std::os::fd::{AsFd as _, AsRawFd as _};
        let mut state = lock(&SILENCED);
        if let Some((n, _)) = state.as_mut() {
            *n += 1;
            return Some(Silence { _private: () });
        }
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .ok()?;
        let out = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
        let err = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
        let saved = [out, err];
        for fd in [1, 2] {
            // SAFETY: dup2 onto the standard descriptors from a descriptor we own; the
            // originals are kept in `saved` and restored by the last guard.
            if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
                restore(&saved);
                return None;
            }
        }
        *state = Some((1, saved));
        Some(Silence { _private: () })
    }

    #[cfg(not(unix))]
    fn new() -> Option<Silence> {
        None
    }
}

#[cfg(unix)]
fn restore(saved: &[std::os::fd::OwnedFd; 2]) {
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    for (fd, orig) in [1, 2].into_iter().zip(saved) {
        // SAFETY: puts back a descriptor this process duplicated from the same fd.
        unsafe {
            libc::dup2(orig.as_raw_fd(), fd);
        }
    }
}

impl Drop for Silence {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            let mut state = lock(&SILENCED);
            if let Some((n, saved)) = state.as_mut() {
                *n -= 1;
                if *n == 0 {
                    restore(saved);
                    *state = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_pick_the_verbosity() {
        assert_eq!(Verbosity::from_flags(false, false), Verbosity::Normal);
        assert_eq!(Verbosity::from_flags(true, false), Verbosity::Quiet);
        assert_eq!(Verbosity::from_flags(false, true), Verbosity::Verbose);
        assert_eq!(Display::choose(Verbosity::Quiet), Display::Quiet);
        assert_eq!(Display::choose(Verbosity::Verbose), Display::Lines);
    }

    #[test]
    fn every_display_accepts_every_call() {
        for d in [Display::Quiet, Display::Lines, Display::Bar] {
            let p = Progress::with_display(Verbosity::Normal, d, 2);
            p.benchmark(0, "matmul/f32/m=1,n=1,k=1");
            p.step("naive", "verifying");
            p.row("naive ok");
            p.benchmark_done();
            p.finish();
        }
    }

    #[cfg(unix)]
    #[test]
    fn silence_restores_stdout_and_stderr() {
        use std::os::fd::AsRawFd as _;
        let before = std::fs::read_link(format!("/proc/self/fd/{}", std::io::stderr().as_raw_fd()));
        {
            let p = Progress::with_display(Verbosity::Normal, Display::Quiet, 1);
            let guard = p.silence_criterion();
            assert!(guard.is_some());
            if before.is_ok() {
                let now = std::fs::read_link("/proc/self/fd/2").unwrap();
                assert_eq!(now, std::path::PathBuf::from("/dev/null"));
            }
        }
        let after = std::fs::read_link("/proc/self/fd/2");
        assert_eq!(before.ok(), after.ok());
        let verbose = Progress::with_display(Verbosity::Verbose, Display::Lines, 1);
        assert!(verbose.silence_criterion().is_none());
    }
}
