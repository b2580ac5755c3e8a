mod commit {
    include!("../tools/build-commit.rs");

    pub fn run() {
        main()
    }
}

fn main() {
    commit::run();
    // The re-exec from the read-only view happens at the ELF entry, before glibc starts
    // (src/early_reexec.rs): patina_start runs first and then jumps to glibc's _start.
    // (The shim's package uses this build script too, for the commit only.)
    let var = |name| std::env::var(name).unwrap_or_default();
    if var("CARGO_PKG_NAME") == "patina"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
    {
        println!("cargo:rustc-link-arg-bin=patina=-Wl,--entry=patina_start");
    }
}
