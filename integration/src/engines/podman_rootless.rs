//! Rootless podman (issue 16): podman run by a test user with its own systemd
//! (user@<uid>.service, lingering), at its rootless defaults: the systemd cgroup manager
//! through the user's bus (the containers' scopes under user@<uid>.service), slirp4netns,
//! the runtime run as uid 0 of podman's user namespace. The rest as [`super::podman`]
//! (private config and storage, runc then the runtime under test). Needs systemd as PID 1.

use super::podman::Podman;

super::engine_instance!(
    Podman,
    "podman-rootless",
    Podman::setup_rootless,
    "The rootless podman instance of this test process."
);
