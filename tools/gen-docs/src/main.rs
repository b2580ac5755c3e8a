//! `gen-docs OUT_DIR`: the man pages and shell completions of patina,
//! patina-imagetool and containerd-shim-patina-v2, written from the definitions the
//! binaries parse their arguments with, so the two cannot drift apart:
//!
//! * `OUT_DIR/man/man8/patina.8` and `patina-<command>.8` (an administrator's tool,
//!   as runc's pages), `OUT_DIR/man/man1/patina-imagetool.1` and its commands',
//!   `OUT_DIR/man/man8/containerd-shim-patina-v2.8` (from the shim's flag table);
//! * `OUT_DIR/completions/{bash,zsh,fish}/` for patina and patina-imagetool (the shim is
//!   started by containerd, never typed).
//!
//! `make install` runs it. The two binaries' clap definitions live in their `main`
//! crates (to keep clap's derive out of the libraries' API): the files are compiled
//! into this tool as modules, their entry points unused here.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

#[allow(dead_code)]
#[path = "../../../runtime/src/cli.rs"]
mod patina_cli;

#[allow(dead_code)]
#[path = "../../../imagetool/src/main.rs"]
mod imagetool_cli;

mod shim_man;

fn main() -> Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: gen-docs OUT_DIR")?;
    let tools = [
        (patina_cli::Cli::command(), "8"),
        (imagetool_cli::Cli::command(), "1"),
    ];
    for (cmd, section) in tools {
        let dir = out.join("man").join(format!("man{section}"));
        std::fs::create_dir_all(&dir)?;
        let mut cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        man_pages(&cmd, section, &dir)?;
        completions(&mut cmd, &out.join("completions"))?;
    }
    let dir = out.join("man/man8");
    std::fs::write(dir.join("containerd-shim-patina-v2.8"), shim_man::render())?;
    Ok(())
}

/// A page for `cmd` and one for each of its commands (`patina-create.8`, ...).
fn man_pages(cmd: &clap::Command, section: &str, dir: &Path) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, section, dir)?;
    }
    // `--version` prints several lines (runc's shape); a page's title and VERSION take one.
    let version = concat!(
        env!("CARGO_PKG_VERSION"),
        " (commit ",
        env!("PATINA_COMMIT"),
        ")"
    );
    let page = clap_mangen::Man::new(cmd.clone().version(version))
        .section(section)
        .manual("patina");
    let path = page.generate_to(dir)?;
    println!("{}", path.display());
    Ok(())
}

/// bash: `<name>` (bash-completion's completionsdir loads it by command name);
/// zsh: `_<name>`; fish: `<name>.fish`.
fn completions(cmd: &mut clap::Command, out: &Path) -> Result<()> {
    let name = cmd.get_name().to_string();
    for (shell, file) in [
        (Shell::Bash, name.clone()),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let dir = out.join(shell.to_string());
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(file);
        let mut f = std::fs::File::create(&path)?;
        clap_complete::generate(shell, cmd, &name, &mut f);
        println!("{}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a man page or `--help` would show without a description.
    fn undescribed(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        let path = format!("{path} {}", cmd.get_name());
        if cmd.get_about().is_none() {
            out.push(path.clone());
        }
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            undescribed(sub, &path, out);
        }
    }

    #[test]
    fn every_command_flag_and_argument_is_described() {
        let mut missing = Vec::new();
        for cmd in [patina_cli::Cli::command(), imagetool_cli::Cli::command()] {
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            undescribed(&cmd, "", &mut missing);
        }
        assert!(missing.is_empty(), "no description: {missing:#?}");
    }

    #[test]
    fn shim_page_names_every_flag() {
        let page = shim_man::render();
        for (name, _, what) in containerd_shim_patina::start::FLAGS {
            let flag = format!("\\-{}", name.replace('-', "\\-"));
            assert!(page.contains(&flag), "-{name}");
            assert!(page.contains(&what.replace('-', "\\-")), "{what}");
        }
    }
}
