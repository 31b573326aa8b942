//! The `priceperf` binary: parse arguments, run, print errors as one paragraph, exit with
//! the code DESIGN.md assigns.

use clap::Parser;

fn main() {
    // A bug must still end in one readable paragraph, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("priceperf: internal error: {info}. This is a bug in priceperf; please report it with the command you ran.");
    }));
    let cli = priceperf::cli::Cli::parse();
    let code = match priceperf::cli::execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("priceperf: error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
