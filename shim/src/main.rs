//! containerd-shim-patina-v2 (see docs/shim.md): everything is in the library.

fn main() {
    std::process::exit(containerd_shim_patina::start::main());
}
