//! containerd-shim-patina-v2(8): the shim parses Go-style flags by hand (containerd
//! passes `-namespace x`), so its page is written here from the shim's own flag table
//! (`FLAGS`, `ACTIONS`: what `-h` prints).

use containerd_shim_patina::start::{ACTIONS, FLAGS, RUNTIME_NAME};
use roff::{bold, italic, roman, Roff};

pub fn render() -> String {
    let mut page = Roff::new();
    let source = concat!("patina ", env!("CARGO_PKG_VERSION"));
    page.control(
        "TH",
        ["containerd-shim-patina-v2", "8", "", source, "patina"],
    )
    .control("SH", ["NAME"])
    .text([roman(
        "containerd-shim-patina-v2 - containerd's runtime v2 shim for patina",
    )])
    .control("SH", ["SYNOPSIS"])
    .text([
        bold("containerd-shim-patina-v2"),
        roman(" ["),
        italic("flags"),
        roman("] ["),
        bold("start"),
        roman(" | "),
        bold("delete"),
        roman("]"),
    ])
    .control("SH", ["DESCRIPTION"])
    .text([roman(format!(
        "The containerd runtime v2 shim of the runtime {RUNTIME_NAME}: containerd starts it \
             (ctr run --runtime {RUNTIME_NAME}, or a CRI runtime handler whose runtime_type is \
             {RUNTIME_NAME}) and speaks the task API (v2 and v3) to it over ttrpc. It drives \
             patina, or the runtime named by the runc options' BinaryName, through runc's \
             command line. It is not meant to be started by hand."
    ))])
    .control("PP", [])
    .text([roman(ACTIONS)])
    .control("SH", ["OPTIONS"])
    .text([roman(
        "Flags take one dash or two, and a value as the next argument or after '='.",
    )]);
    for (name, typ, what) in FLAGS {
        page.control("TP", []);
        match *typ {
            "" => page.text([bold(format!("-{name}"))]),
            _ => page.text([bold(format!("-{name}")), roman(" "), italic(*typ)]),
        };
        page.text([roman(*what)]);
    }
    page.control("SH", ["SEE ALSO"]).text([roman(
        "patina(8), containerd(8), ctr(8); docs/shim.md in the patina sources.",
    )]);
    page.to_roff()
}
