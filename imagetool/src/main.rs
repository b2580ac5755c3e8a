//! Command line for patina-imagetool; the work lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use patina_imagetool::copy::Method;
use patina_imagetool::devices::{self, Devices};
use patina_imagetool::idmap::IdMap;
use patina_imagetool::inspect;
use patina_imagetool::platform::Platform;
use patina_imagetool::unpack::{unpack, UnpackOptions};

#[derive(Parser)]
#[command(
    name = "patina-imagetool",
    version = concat!(env!("CARGO_PKG_VERSION"), "\ncommit: ", env!("PATINA_COMMIT")),
    about = "Unpack OCI images into runtime bundles"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum CacheMode {
    /// Reflink where the filesystem supports it, else copy.
    Auto,
    /// Copy every file out of the cache.
    Copy,
    /// Hard-link files from the cache (shares inodes with the cache).
    Hardlink,
}

#[derive(Subcommand)]
enum Command {
    /// Unpack an image into an OCI bundle (rootfs/ and config.json).
    Unpack {
        /// SRC[:REF]: OCI layout dir, oci-archive or docker save tarball.
        #[arg(long)]
        image: String,
        /// Bundle directory to create (absent, or an empty directory it replaces).
        bundle: PathBuf,
        /// os/arch[/variant] to pick from a multi-platform index (default: this host).
        #[arg(long)]
        platform: Option<String>,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
        /// Unpack without chown/mknod and write a rootless config.
        #[arg(long)]
        rootless: bool,
        /// container:host:size, shifts file owners (repeatable).
        #[arg(long = "uid-map")]
        uid_map: Vec<String>,
        /// container:host:size, shifts file groups (repeatable).
        #[arg(long = "gid-map")]
        gid_map: Vec<String>,
        /// Layer cache directory: each layer is extracted once.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// With --cache: make the rootfs an overlay of the cached layers.
        #[arg(long)]
        overlay: bool,
        /// With --cache (no --overlay): how files come out of the cache.
        #[arg(long, value_enum, default_value = "auto")]
        cache_mode: CacheMode,
        /// Create the char and block device nodes that layers carry
        /// (left out by default: the runtime makes the container's /dev).
        #[arg(long)]
        allow_devices: bool,
    },
    /// Show an image's manifest, config and layers.
    Inspect {
        /// SRC[:REF]: OCI layout dir, oci-archive or docker save tarball.
        image: String,
        /// os/arch[/variant] to pick from a multi-platform index (default: this host).
        #[arg(long)]
        platform: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List the references in an image source.
    List {
        /// OCI layout dir, oci-archive or docker save tarball.
        source: String,
    },
}

fn platform(p: &Option<String>) -> Result<Platform> {
    p.as_deref()
        .map_or_else(|| Ok(Platform::host()), Platform::parse)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Unpack {
            image,
            bundle,
            platform: p,
            quiet,
            rootless,
            uid_map,
            gid_map,
            cache,
            overlay,
            cache_mode,
            allow_devices,
        } => {
            let opts = UnpackOptions {
                platform: platform(&p)?,
                quiet,
                rootless,
                uid_map: uid_map
                    .iter()
                    .map(|s| IdMap::parse(s))
                    .collect::<Result<_>>()?,
                gid_map: gid_map
                    .iter()
                    .map(|s| IdMap::parse(s))
                    .collect::<Result<_>>()?,
                cache,
                overlay,
                cache_method: match cache_mode {
                    CacheMode::Auto => Method::Auto,
                    CacheMode::Copy => Method::Copy,
                    CacheMode::Hardlink => Method::Hardlink,
                },
                devices: if allow_devices {
                    Devices::Create
                } else {
                    Devices::LeaveOut
                },
            };
            let report = unpack(&image, &bundle, &opts)?;
            if let Some(w) = devices::left_out_warning(&report.devices_left_out) {
                eprintln!("patina-imagetool: warning: {w}");
            }
            Ok(())
        }
        Command::Inspect {
            image,
            platform: p,
            json,
        } => {
            let img = inspect::resolve(&image, &platform(&p)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&inspect::to_json(&img))?);
            } else {
                print!("{}", inspect::to_text(&img));
            }
            Ok(())
        }
        Command::List { source } => {
            for r in inspect::list(&source)? {
                println!("{r}");
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the whole context chain, outermost first.
            eprintln!("patina-imagetool: {e:#}");
            ExitCode::FAILURE
        }
    }
}
