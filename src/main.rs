//! The `harness` binary: parse the command line, run, exit with the code the library chose.

fn main() {
    std::process::exit(harness::cli::main());
}
