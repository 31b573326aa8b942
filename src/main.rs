//! The `priceperf` binary: parse arguments, run, print errors as one paragraph, exit with
//! the code DESIGN.md assigns.

use clap::Parser;

fn main() {
    // A bug must still end in one readable paragraph, not a backtrace.
    // Through the progress reporter: stderr may be silenced while criterion measures.
    std::panic::set_hook(Box::new(|info| {
        priceperf::progress::notice(&format!(
            "priceperf: internal error: {}. This is a bug in priceperf; please report it with the command you ran.",
            priceperf::error::one_paragraph(&info.to_string())
        ));
    }));
    let cli = priceperf::cli::Cli::parse();
    let code = match priceperf::cli::execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("priceperf: error: {}", e.paragraph());
            e.exit_code()
        }
    };
    std::process::exit(code);
}
