//! The `patina` command line: runc's commands and flags, over the library.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
