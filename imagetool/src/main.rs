//! Command line for patina-imagetool; the work lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use patina_imagetool::copy::Method;
use patina_imagetool::devices::{self, Devices};
use patina_imagetool::idmap::IdMap;
use patina_imagetool::inspect;
use patina_imagetool::platform::Platform;
use patina_imagetool::progress::Progress;
use patina_imagetool::pull;
use patina_imagetool::registry::auth::Credentials;
use patina_imagetool::registry::{self, ClientOptions, CopyOptions, Reference};
use patina_imagetool::store::LayoutWriter;
use patina_imagetool::unpack::{unpack, Report, UnpackOptions};

#[derive(Parser)]
#[command(
    name = "patina-imagetool",
    version = concat!(env!("CARGO_PKG_VERSION"), "\ncommit: ", env!("PATINA_COMMIT")),
    about = "Fetch OCI images from registries and unpack them into runtime bundles"
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

/// How to unpack: shared by `unpack` and `pull`.
#[derive(Args)]
struct UnpackArgs {
    /// os/arch[/variant] to pick from a multi-platform index (default: this host).
    #[arg(long)]
    platform: Option<String>,
    /// No progress bars or lines.
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
}

/// How to reach a registry: shared by `pull` and `copy`.
#[derive(Args)]
struct RegistryArgs {
    /// Verify the registry's TLS certificate (--tls-verify=false: don't; then
    /// plain HTTP is tried too when TLS fails).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    tls_verify: bool,
    /// Directory of CA certificates (*.crt) and a client certificate
    /// (*.cert + *.key) (default: /etc/containers/certs.d/HOST:PORT,
    /// /etc/docker/certs.d/HOST:PORT).
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Credentials file in the auths format (default: $REGISTRY_AUTH_FILE,
    /// $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json,
    /// ~/.docker/config.json).
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// USER:PASSWORD for the registry (instead of the auth file).
    #[arg(long, value_name = "USER:PASSWORD")]
    creds: Option<String>,
    /// Blobs downloading at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    jobs: usize,
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
        #[command(flatten)]
        unpack: UnpackArgs,
    },
    /// Fetch an image from a registry into the local store, then unpack it
    /// into an OCI bundle.
    Pull {
        /// docker://HOST[:PORT]/NAME[:TAG][@DIGEST] (docker:// may be left out).
        image: String,
        /// Bundle directory to create (absent, or an empty directory it replaces).
        bundle: PathBuf,
        /// OCI layout the image is fetched into and kept in (default:
        /// $XDG_CACHE_HOME/patina-imagetool/images, for root
        /// /var/cache/patina-imagetool/images).
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        unpack: UnpackArgs,
    },
    /// Copy an image from a registry into an OCI image layout directory.
    Copy {
        /// docker://HOST[:PORT]/NAME[:TAG][@DIGEST] (docker:// may be left out).
        source: String,
        /// [oci:]DIR[:REF]: the layout (created if missing) and the ref name
        /// to give the image (default: the source's tag).
        dest: String,
        /// os/arch[/variant] to pick from a multi-platform index (default: this host).
        #[arg(long)]
        platform: Option<String>,
        /// No progress bars or lines.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        registry: RegistryArgs,
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

fn unpack_options(a: UnpackArgs) -> Result<UnpackOptions> {
    Ok(UnpackOptions {
        platform: platform(&a.platform)?,
        quiet: a.quiet,
        rootless: a.rootless,
        uid_map: a
            .uid_map
            .iter()
            .map(|s| IdMap::parse(s))
            .collect::<Result<_>>()?,
        gid_map: a
            .gid_map
            .iter()
            .map(|s| IdMap::parse(s))
            .collect::<Result<_>>()?,
        cache: a.cache,
        overlay: a.overlay,
        cache_method: match a.cache_mode {
            CacheMode::Auto => Method::Auto,
            CacheMode::Copy => Method::Copy,
            CacheMode::Hardlink => Method::Hardlink,
        },
        devices: if a.allow_devices {
            Devices::Create
        } else {
            Devices::LeaveOut
        },
    })
}

fn copy_options(r: RegistryArgs, platform: Platform) -> Result<CopyOptions> {
    Ok(CopyOptions {
        client: ClientOptions {
            tls_verify: r.tls_verify,
            cert_dir: r.cert_dir,
            authfile: r.authfile,
            creds: r.creds.as_deref().map(Credentials::parse).transpose()?,
        },
        platform,
        jobs: r.jobs,
    })
}

fn warn_devices(report: &Report) {
    if let Some(w) = devices::left_out_warning(&report.devices_left_out) {
        eprintln!("patina-imagetool: warning: {w}");
    }
}

/// `[oci:]DIR[:REF]`: the first `:` ends the directory, as skopeo's `oci:`
/// transport reads it (a layout path with `:` cannot be named here).
fn split_dest(dest: &str) -> (PathBuf, Option<String>) {
    let d = dest.strip_prefix("oci:").unwrap_or(dest);
    match d.split_once(':') {
        Some((dir, r)) if !r.is_empty() => (PathBuf::from(dir), Some(r.to_string())),
        Some((dir, _)) => (PathBuf::from(dir), None),
        None => (PathBuf::from(d), None),
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Unpack {
            image,
            bundle,
            unpack: a,
        } => {
            let report = unpack(&image, &bundle, &unpack_options(a)?)?;
            warn_devices(&report);
            Ok(())
        }
        Command::Pull {
            image,
            bundle,
            store,
            registry,
            unpack: a,
        } => {
            let uo = unpack_options(a)?;
            let co = copy_options(registry, uo.platform.clone())?;
            let store = store.unwrap_or_else(pull::default_store);
            let report = pull::pull(&image, &bundle, &store, &co, &uo)?;
            warn_devices(&report);
            Ok(())
        }
        Command::Copy {
            source,
            dest,
            platform: p,
            quiet,
            registry: r,
        } => {
            let reference = Reference::parse(&source)?;
            let (dir, name) = split_dest(&dest);
            let name = name.or_else(|| reference.tag.clone());
            let co = copy_options(r, platform(&p)?)?;
            let layout = LayoutWriter::create(&dir, false)?;
            let progress = Progress::new(quiet);
            let c = registry::copy(&reference, &layout, name.as_deref(), &co, &progress)?;
            progress.line(&format!(
                "copied {reference} ({}, {} layers, {} bytes, {} downloaded) into {}{}",
                c.manifest,
                c.layers,
                c.bytes,
                c.downloaded,
                dir.display(),
                name.map(|n| format!(":{n}")).unwrap_or_default()
            ));
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
