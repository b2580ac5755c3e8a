//! The test image of the engine, shim and CRI tests, built locally with no network: a
//! busybox-static root filesystem ([`crate::rootfs::build`], plus every busybox applet)
//! packed into an OCI layout with `umoci`, then converted with `skopeo copy` to a
//! docker-archive (docker, podman) and an oci-archive (containerd); and the CRI pause image
//! (the same layer, another command) as an oci-archive. Built once per test process, under
//! `/dev/shm/patina-img-<pid>`, removed at exit.

use crate::runtime::{exec, Output};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Name every engine knows the image by.
pub const NAME: &str = "localhost/patina-busybox:latest";
/// The CRI sandbox image: [`NAME`]'s filesystem, its command [`PAUSE_CMD`].
pub const PAUSE_NAME: &str = "localhost/patina-pause:latest";
/// sh waiting for signals, exiting 0 on SIGTERM or SIGINT.
pub const PAUSE_CMD: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done";

pub struct Image {
    /// Scratch dir holding the layout and the archives.
    pub dir: PathBuf,
    /// OCI image layout (`umoci`), tag `latest`.
    pub layout: PathBuf,
    /// `docker load` / `podman load` input.
    pub docker_archive: PathBuf,
    /// `ctr images import` input.
    pub oci_archive: PathBuf,
    /// `ctr images import` input of [`PAUSE_NAME`].
    pub pause_oci_archive: PathBuf,
}

fn dir() -> PathBuf {
    PathBuf::from(format!("/dev/shm/patina-img-{}", std::process::id()))
}

#[track_caller]
fn run(scratch: &Path, argv: &[&str]) -> Output {
    let out = exec(
        Command::new(argv[0]).args(&argv[1..]),
        scratch,
        Duration::from_secs(120),
    );
    assert!(out.success(), "{argv:?} failed: {out:#?}");
    out
}

/// skopeo (containers/image) keeps a blob-info cache in `/var/lib/containers/cache` for root,
/// with no option to move it: removed at [`remove`] when this process created it.
const SKOPEO_CACHE_ROOT: &str = "/var/lib/containers";
static CREATED_CACHE: AtomicBool = AtomicBool::new(false);

/// The busybox image, built on first use.
pub fn busybox() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        if !Path::new(SKOPEO_CACHE_ROOT).exists() {
            CREATED_CACHE.store(true, Ordering::Relaxed);
        }
        let dir = dir();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create image dir");
        let scratch = dir.join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let layout = dir.join("layout");
        let bundle = dir.join("bundle");
        let l = layout.to_string_lossy().into_owned();
        let b = bundle.to_string_lossy().into_owned();
        let img = format!("{l}:latest");
        run(&scratch, &["umoci", "init", "--layout", &l]);
        run(&scratch, &["umoci", "new", "--image", &img]);
        run(&scratch, &["umoci", "unpack", "--image", &img, &b]);
        // umoci created an empty rootfs: fill it.
        let rootfs = bundle.join("rootfs");
        std::fs::remove_dir_all(&rootfs).unwrap();
        crate::rootfs::build(&rootfs);
        add_all_applets(&rootfs.join("bin"));
        run(&scratch, &["umoci", "repack", "--image", &img, &b]);
        let config = |args: &[&str]| {
            let mut argv = vec!["umoci", "config", "--image", &img];
            argv.extend_from_slice(args);
            run(&scratch, &argv);
        };
        config(&[
            "--config.cmd",
            "sh",
            "--config.env",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "--config.workingdir",
            "/",
        ]);
        // The pause image: the same layer and config, another command.
        let pause = format!("{l}:pause");
        config(&[
            "--tag",
            "pause",
            "--config.cmd",
            "sh",
            "--config.cmd",
            "-c",
            "--config.cmd",
            PAUSE_CMD,
        ]);
        let docker_archive = dir.join("busybox.docker.tar");
        let oci_archive = dir.join("busybox.oci.tar");
        let pause_oci_archive = dir.join("pause.oci.tar");
        for (src, transport, path, name) in [
            (&img, "docker-archive", &docker_archive, NAME),
            (&img, "oci-archive", &oci_archive, NAME),
            (&pause, "oci-archive", &pause_oci_archive, PAUSE_NAME),
        ] {
            let dest = format!("{transport}:{}:{name}", path.display());
            run(
                &scratch,
                &["skopeo", "copy", "--quiet", &format!("oci:{src}"), &dest],
            );
        }
        std::fs::remove_dir_all(&bundle).unwrap();
        crate::engines::at_exit(remove_at_exit);
        Image {
            dir,
            layout,
            docker_archive,
            oci_archive,
            pause_oci_archive,
        }
    })
}

/// Links the busybox applets [`crate::rootfs::APPLETS`] leaves out into `bin`.
fn add_all_applets(bin: &Path) {
    let list = std::process::Command::new(crate::rootfs::BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        let link = bin.join(applet);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
}

extern "C" fn remove_at_exit() {
    remove();
}

/// Removes the image files of this process (engine teardown).
pub fn remove() {
    let _ = std::fs::remove_dir_all(dir());
    if CREATED_CACHE.swap(false, Ordering::Relaxed) {
        let _ = std::fs::remove_dir_all(SKOPEO_CACHE_ROOT);
    }
}
