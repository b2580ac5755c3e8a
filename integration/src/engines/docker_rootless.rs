//! Rootless docker (issue 16): dockerd started by a test user through Debian's
//! `dockerd-rootless.sh` (rootlesskit, slirp4netns; dockerd and the runtimes it starts are
//! uid 0 of rootlesskit's user namespace), with the user's own systemd (user@<uid>.service)
//! and docker's systemd cgroup driver through the user's bus. The rest as
//! [`super::docker`] (private daemon, `ref-runc` then the runtime under test). Needs
//! systemd as PID 1.

use super::docker::Docker;

super::engine_instance!(
    Docker,
    "docker-rootless",
    Docker::start_rootless,
    "The rootless dockerd instance of this test process."
);
