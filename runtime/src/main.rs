//! The `patina` command line: runc's commands and flags, over the library.

mod cli;
// Keep in step with the entry point build.rs sets.
#[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
mod early_reexec;

fn main() {
    std::process::exit(cli::main());
}
