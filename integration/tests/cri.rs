//! The Kubernetes node path: a CRI v1 client speaks to containerd's CRI plugin exactly as
//! the kubelet does, for pods whose runtime handler is `patina` (containerd-shim-patina-v2
//! driving the runtime under test) and, as the comparison, `runc` (containerd-shim-runc-v2
//! with Debian's runc). Private containerd with the CRI plugin: integration/src/containerd.rs.
//! Host-network pods (no CNI), pod cgroups beneath this test's own cgroup (cgroupfs).
//!
//! `cargo test -p integration --test cri -- --ignored cri_bench` is the benchmark
//! (bench/cri.sh): pod start and ExecSync, latency and CPU, patina vs runc.

use hyper_util::rt::TokioIo;
use integration::containerd::{mounts_under, Containerd, IMAGE};
use integration::engines::systemd::{self, ScopeView};
use integration::runtime::wait_for;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint, Uri};

const NODE: i32 = cri::NamespaceMode::Node as i32;
const POD: i32 = cri::NamespaceMode::Pod as i32;
const CONTAINER: i32 = cri::NamespaceMode::Container as i32;
const MIB: i64 = 1024 * 1024;

struct Client {
    rt: RuntimeServiceClient<Channel>,
    img: ImageServiceClient<Channel>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(sock: PathBuf) -> Client {
    // The URI is not used: every connection is the unix socket.
    let channel = Endpoint::try_from("http://[::1]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(sock).await?))
            }
        }))
        .await
        .expect("connect to containerd's CRI socket");
    Client {
        rt: RuntimeServiceClient::new(channel.clone()),
        img: ImageServiceClient::new(channel),
    }
}

/// A pod named `name`: host network, pod IPC, per-container PID.
fn pod_config(c: &Containerd, name: &str) -> cri::PodSandboxConfig {
    let logs = c.dir.join("logs").join(name);
    std::fs::create_dir_all(&logs).unwrap();
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: logs.to_string_lossy().into_owned(),
        labels: HashMap::from([("app".into(), name.into())]),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/pod-{name}", c.cgroup),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(ns_options()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ns_options() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: NODE,
        pid: CONTAINER,
        ipc: POD,
        ..Default::default()
    }
}

fn container_config(name: &str, args: &[&str], memory: i64) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: IMAGE.into(),
            ..Default::default()
        }),
        command: args.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: memory,
                ..Default::default()
            }),
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(ns_options()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

impl Client {
    async fn run_pod(&mut self, config: &cri::PodSandboxConfig, handler: &str) -> String {
        self.rt
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: handler.into(),
            })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id
    }

    async fn create(
        &mut self,
        pod: &str,
        pod_config: &cri::PodSandboxConfig,
        config: cri::ContainerConfig,
    ) -> String {
        self.rt
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(config),
                sandbox_config: Some(pod_config.clone()),
            })
            .await
            .expect("CreateContainer")
            .into_inner()
            .container_id
    }

    async fn start(&mut self, id: &str) {
        self.rt
            .start_container(cri::StartContainerRequest {
                container_id: id.into(),
            })
            .await
            .expect("StartContainer");
    }

    async fn status(&mut self, id: &str) -> (cri::ContainerStatus, serde_json::Value) {
        let r = self
            .rt
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: true,
            })
            .await
            .expect("ContainerStatus")
            .into_inner();
        let info = r
            .info
            .get("info")
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(serde_json::Value::Null);
        (r.status.unwrap(), info)
    }

    /// The container's status once CRI reports it EXITED (at most `limit`).
    async fn wait_exited(&mut self, id: &str, limit: Duration) -> cri::ContainerStatus {
        let start = Instant::now();
        loop {
            let (status, _) = self.status(id).await;
            if status.state == cri::ContainerState::ContainerExited as i32 {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "not EXITED after {limit:?}: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn container_pid(&mut self, id: &str) -> i32 {
        let (_, info) = self.status(id).await;
        info["pid"].as_i64().expect("pid in ContainerStatus info") as i32
    }

    async fn pod_pid(&mut self, id: &str) -> i32 {
        let r = self
            .rt
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: true,
            })
            .await
            .expect("PodSandboxStatus")
            .into_inner();
        let info: serde_json::Value = serde_json::from_str(&r.info["info"]).unwrap();
        info["pid"].as_i64().expect("pid in PodSandboxStatus info") as i32
    }

    async fn exec(
        &mut self,
        id: &str,
        cmd: &[&str],
        timeout: i64,
    ) -> Result<cri::ExecSyncResponse, tonic::Status> {
        self.rt
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout,
            })
            .await
            .map(|r| r.into_inner())
    }

    async fn stop(&mut self, id: &str, timeout: i64) {
        self.rt
            .stop_container(cri::StopContainerRequest {
                container_id: id.into(),
                timeout,
            })
            .await
            .expect("StopContainer");
    }

    async fn remove(&mut self, id: &str) {
        self.rt
            .remove_container(cri::RemoveContainerRequest {
                container_id: id.into(),
            })
            .await
            .expect("RemoveContainer");
    }

    async fn remove_pod(&mut self, pod: &str) {
        self.rt
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: pod.into(),
            })
            .await
            .expect("StopPodSandbox");
        self.rt
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod.into(),
            })
            .await
            .expect("RemovePodSandbox");
    }
}

fn ns(pid: i32, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| panic!("ns {kind} of {pid}: {e}"))
}

/// The directory of `pid`'s memory cgroup (v1 memory controller, or v2).
fn memory_cgroup(pid: i32) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let p = text.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        Path::new("/sys/fs/cgroup").join(p.trim_start_matches('/'))
    } else {
        let p = text
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, c, p) = (f.next()?, f.next()?, f.next()?);
                c.split(',').any(|c| c == "memory").then_some(p)
            })
            .unwrap();
        Path::new("/sys/fs/cgroup/memory").join(p.trim_start_matches('/'))
    }
}

fn memory_limit(pid: i32) -> i64 {
    let dir = memory_cgroup(pid);
    let file = if dir.join("memory.max").exists() {
        dir.join("memory.max")
    } else {
        dir.join("memory.limit_in_bytes")
    };
    std::fs::read_to_string(&file)
        .unwrap()
        .trim()
        .parse()
        .unwrap_or(i64::MAX)
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(") ")
                .map(|(_, r)| r.starts_with('Z'))
                .unwrap_or(true)
        })
        .unwrap_or(false)
}

/// The kubelet's sequence for one pod of two containers on `handler`.
fn pod_lifecycle(handler: &str) {
    let c = Containerd::start_cri(&format!("cri-{handler}"));
    runtime().block_on(async {
        let mut cl = connect(c.address()).await;
        // The images are known to CRI (imported in k8s.io).
        let images = cl
            .img
            .list_images(cri::ListImagesRequest { filter: None })
            .await
            .expect("ListImages")
            .into_inner()
            .images;
        assert!(
            images
                .iter()
                .any(|i| i.repo_tags.iter().any(|t| t == IMAGE)),
            "{images:?}"
        );

        let name = format!("pod-{handler}");
        let config = pod_config(&c, &name);
        let pod = cl.run_pod(&config, handler).await;
        let pod_pid = cl.pod_pid(&pod).await;

        // c1: output on both streams, then sleeps as pid 1 (ignores SIGTERM: StopContainer
        // kills it after the grace period). c2: exits on SIGTERM.
        let c1 = cl
            .create(
                &pod,
                &config,
                container_config(
                    "c1",
                    &["sh", "-c", "echo hello; echo oops >&2; exec sleep 1000"],
                    64 * MIB,
                ),
            )
            .await;
        let c2 = cl
            .create(
                &pod,
                &config,
                container_config(
                    "c2",
                    &[
                        "sh",
                        "-c",
                        "trap 'exit 0' TERM; while :; do sleep 1 & wait; done",
                    ],
                    0,
                ),
            )
            .await;
        cl.start(&c1).await;
        cl.start(&c2).await;
        for id in [&c1, &c2] {
            let (status, _) = cl.status(id).await;
            assert_eq!(
                status.state,
                cri::ContainerState::ContainerRunning as i32,
                "{status:?}"
            );
        }
        let p1 = cl.container_pid(&c1).await;
        let p2 = cl.container_pid(&c2).await;

        // Namespaces: IPC is the pod's (joined by path), UTS and net are the node's
        // (host network), PID is each container's own.
        for p in [p1, p2] {
            assert_eq!(ns(p, "ipc"), ns(pod_pid, "ipc"));
            assert_eq!(ns(p, "uts"), ns(pod_pid, "uts"));
            assert_eq!(ns(p, "net"), ns(std::process::id() as i32, "net"));
            assert_ne!(ns(p, "pid"), ns(pod_pid, "pid"));
        }
        assert_ne!(ns(pod_pid, "ipc"), ns(std::process::id() as i32, "ipc"));
        let host = cl.exec(&c1, &["hostname"], 10).await.unwrap();
        let host2 = cl.exec(&c2, &["hostname"], 10).await.unwrap();
        assert_eq!(host.stdout, host2.stdout);
        assert_eq!(
            String::from_utf8_lossy(&host.stdout).trim(),
            nix::unistd::gethostname().unwrap().to_string_lossy()
        );

        // One shim for the pod (sandbox and both containers).
        let shims = c.shim_pids();
        assert_eq!(shims.len(), 1, "one shim per pod: {shims:?}");

        // The pod cgroup parent: containers' cgroups are beneath it.
        let pod_cgroup = memory_cgroup(p1);
        assert!(
            pod_cgroup
                .to_string_lossy()
                .contains(&format!("{}/pod-{name}/", c.cgroup)),
            "{pod_cgroup:?}"
        );

        // ExecSync: output, exit codes, timeout (the probe path).
        let r = cl.exec(&c1, &["echo", "ok"], 10).await.unwrap();
        assert_eq!((r.exit_code, r.stdout.as_slice()), (0, &b"ok\n"[..]));
        let r = cl
            .exec(&c1, &["sh", "-c", "echo err >&2; exit 3"], 10)
            .await
            .unwrap();
        assert_eq!((r.exit_code, r.stderr.as_slice()), (3, &b"err\n"[..]));
        let r = cl.exec(&c2, &["cat", "/nonexistent"], 10).await.unwrap();
        assert_eq!(r.exit_code, 1, "{r:?}");
        let t = Instant::now();
        let err = cl
            .exec(&c1, &["sleep", "30"], 1)
            .await
            .expect_err("ExecSync past its timeout");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(err.message().contains("timeout"), "{err:?}");
        // The timed-out process was killed: only the container's own sleep is left.
        let r = cl.exec(&c1, &["ps", "-o", "args"], 10).await.unwrap();
        let ps = String::from_utf8_lossy(&r.stdout).into_owned();
        assert!(!ps.contains("sleep 30"), "{ps}");

        // CRI logs at the requested path, in the CRI format.
        let log = Path::new(&config.log_directory).join("c1.log");
        let text = wait_for(Duration::from_secs(5), || {
            let t = std::fs::read_to_string(&log).ok()?;
            (t.contains("stdout F hello") && t.contains("stderr F oops")).then_some(t)
        })
        .unwrap_or_else(|| panic!("CRI log {log:?}: {:?}", std::fs::read_to_string(&log)));
        for line in text.lines() {
            // 2006-01-02T15:04:05.999999999Z07:00 STREAM TAG MESSAGE
            let f: Vec<&str> = line.splitn(4, ' ').collect();
            assert_eq!(f.len(), 4, "{line}");
            assert!(f[0].contains('T') && f[0].len() >= 20, "{line}");
            assert!(f[1] == "stdout" || f[1] == "stderr", "{line}");
            assert!(f[2] == "F" || f[2] == "P", "{line}");
        }

        // UpdateContainerResources: the memory limit changes in the container's cgroup.
        assert_eq!(memory_limit(p1), 64 * MIB);
        cl.rt
            .update_container_resources(cri::UpdateContainerResourcesRequest {
                container_id: c1.clone(),
                linux: Some(cri::LinuxContainerResources {
                    memory_limit_in_bytes: 128 * MIB,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("UpdateContainerResources");
        assert_eq!(memory_limit(p1), 128 * MIB);

        // ContainerStats: figures.
        let stats = cl
            .rt
            .container_stats(cri::ContainerStatsRequest {
                container_id: c1.clone(),
            })
            .await
            .expect("ContainerStats")
            .into_inner()
            .stats
            .unwrap();
        let cpu = stats.cpu.expect("cpu stats");
        let mem = stats.memory.expect("memory stats");
        assert!(
            cpu.usage_core_nano_seconds.map(|v| v.value).unwrap_or(0) > 0,
            "{cpu:?}"
        );
        assert!(
            mem.working_set_bytes.map(|v| v.value).unwrap_or(0) > 0,
            "{mem:?}"
        );
        assert_eq!(stats.attributes.unwrap().id, c1);

        // StopContainer with a grace period: c2 exits on SIGTERM, c1 is killed after 2 s.
        let t = Instant::now();
        cl.stop(&c2, 10).await;
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let t = Instant::now();
        cl.stop(&c1, 2).await;
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(1800) && took < Duration::from_secs(8),
            "{took:?}"
        );
        let (s1, _) = cl.status(&c1).await;
        let (s2, _) = cl.status(&c2).await;
        assert_eq!(s1.state, cri::ContainerState::ContainerExited as i32);
        assert_eq!((s1.exit_code, s2.exit_code), (137, 0), "{s1:?} {s2:?}");
        assert!(!alive(p1) && !alive(p2));

        cl.remove(&c1).await;
        cl.remove(&c2).await;
        cl.remove_pod(&pod).await;
        assert_pod_gone(&c, &mut cl, pod_pid, pod_cgroup.parent().unwrap()).await;
    });
}

/// After the pod's containers and sandbox were removed: nothing left behind (containers,
/// processes, shim, mounts, container cgroups beneath `pod_cgroup_dir`, runtime state).
async fn assert_pod_gone(c: &Containerd, cl: &mut Client, pod_pid: i32, pod_cgroup_dir: &Path) {
    let left = cl
        .rt
        .list_containers(cri::ListContainersRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(left.is_empty(), "{left:?}");
    assert!(!alive(pod_pid));
    assert!(
        wait_for(Duration::from_secs(10), || c
            .shim_pids()
            .is_empty()
            .then_some(()))
        .is_some(),
        "shim left: {:?}",
        c.shim_pids()
    );
    let mounts = mounts_under(&format!("{}/state/", c.dir.display()));
    assert!(mounts.is_empty(), "{mounts:?}");
    let left: Vec<_> = std::fs::read_dir(pod_cgroup_dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "container cgroups left: {left:?}");
    let tasks = c.ctr_ns("k8s.io", &["tasks", "ls", "-q"]);
    assert_eq!(tasks.stdout.trim(), "", "{tasks:?}");
    for root in [
        c.dir.join("state/patina/k8s.io"),
        c.dir.join("runc-root/k8s.io"),
    ] {
        let left: Vec<_> = std::fs::read_dir(&root)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "runtime state left in {root:?}: {left:?}");
    }
}

/// shareProcessNamespace: the kubelet asks for the pod's PID namespace (NamespaceMode POD)
/// for the sandbox and every container. The containers join the pause process's pid
/// namespace by path: each sees the others' processes and the pause process as pid 1.
fn shared_pid_namespace_pod(handler: &str) {
    let c = Containerd::start_cri(&format!("cri-sharepid-{handler}"));
    runtime().block_on(async {
        let mut cl = connect(c.address()).await;
        let name = format!("sharepid-{handler}");
        let mut config = pod_config(&c, &name);
        let shared = cri::NamespaceOption {
            pid: POD,
            ..ns_options()
        };
        let set_pid_mode = |ctx: &mut Option<cri::NamespaceOption>| *ctx = Some(shared.clone());
        set_pid_mode(
            &mut config
                .linux
                .as_mut()
                .unwrap()
                .security_context
                .as_mut()
                .unwrap()
                .namespace_options,
        );
        let pod = cl.run_pod(&config, handler).await;
        let pod_pid = cl.pod_pid(&pod).await;
        let mut ids = Vec::new();
        for (cname, args) in [
            ("app", &["sleep", "4321"][..]),
            ("sidecar", &["sh", "-c", "exec sleep 8765"][..]),
        ] {
            let mut cc = container_config(cname, args, 0);
            set_pid_mode(
                &mut cc
                    .linux
                    .as_mut()
                    .unwrap()
                    .security_context
                    .as_mut()
                    .unwrap()
                    .namespace_options,
            );
            let id = cl.create(&pod, &config, cc).await;
            cl.start(&id).await;
            ids.push(id);
        }
        let (app, sidecar) = (ids[0].clone(), ids[1].clone());
        let pids = [
            cl.container_pid(&app).await,
            cl.container_pid(&sidecar).await,
        ];
        for p in pids {
            assert_eq!(ns(p, "pid"), ns(pod_pid, "pid"), "pid namespace of {p}");
        }
        assert_ne!(ns(pod_pid, "pid"), ns(std::process::id() as i32, "pid"));
        // Seen from inside the sidecar: the sandbox's pause process is pid 1, the app's
        // sleep is there.
        let pause = std::fs::read(format!("/proc/{pod_pid}/cmdline")).unwrap();
        let pause = String::from_utf8_lossy(&pause).replace('\0', " ");
        let r = cl
            .exec(&sidecar, &["ps", "-o", "pid,args"], 10)
            .await
            .unwrap();
        let ps = String::from_utf8_lossy(&r.stdout).into_owned();
        let pid1 = ps
            .lines()
            .find(|l| l.split_whitespace().next() == Some("1"));
        assert!(
            pid1.is_some_and(|l| l.contains(pause.trim())),
            "{pause} {ps}"
        );
        assert!(
            ps.contains("sleep 4321") && ps.contains("sleep 8765"),
            "{ps}"
        );
        // And a signal crosses containers: the sidecar stops the app.
        let kill_app =
            "for p in $(pidof sleep); do if grep -q 4321 /proc/$p/cmdline; then kill $p; fi; done";
        let r = cl
            .exec(&sidecar, &["sh", "-c", kill_app], 10)
            .await
            .unwrap();
        assert_eq!(r.exit_code, 0, "{r:?}");
        let stopped = wait_for(Duration::from_secs(10), || (!alive(pids[0])).then_some(()));
        assert!(
            stopped.is_some(),
            "the sidecar's signal did not reach the app"
        );
        // The app exited by itself: CRI learns it from TaskExit, and its handler deletes
        // the task before it marks the container EXITED. A StopContainer in between finds
        // no task and returns at once, or its Kill meets the task's closing connection
        // ("ttrpc: closed"); a RemoveContainer then finds it RUNNING ("still running, to
        // stop first"): containerd 1.6's CRI, with either shim. The kubelet acts on the
        // status it reads, so do we: EXITED, with SIGTERM's code, before stop and remove.
        let exited = cl.wait_exited(&app, Duration::from_secs(30)).await;
        assert_eq!(exited.exit_code, 128 + libc::SIGTERM, "{exited:?}");
        let pod_cgroup = memory_cgroup(pids[1]);
        for id in [&app, &sidecar] {
            cl.stop(id, 2).await;
            cl.remove(id).await;
        }
        cl.remove_pod(&pod).await;
        assert_pod_gone(&c, &mut cl, pod_pid, pod_cgroup.parent().unwrap()).await;
    });
}

#[test]
fn cri_shared_pid_namespace_patina_handler() {
    shared_pid_namespace_pod("patina");
}

#[test]
fn cri_shared_pid_namespace_runc_handler() {
    shared_pid_namespace_pod("runc");
}

#[test]
fn cri_pod_lifecycle_patina_handler() {
    pod_lifecycle("patina");
}

#[test]
fn cri_pod_lifecycle_runc_handler() {
    pod_lifecycle("runc");
}

/// Stops the test's slices (a pod's slice and its parent stay until stopped, as the
/// kubelet stops them), even when the test fails.
struct SliceGuard(String);

impl Drop for SliceGuard {
    fn drop(&mut self) {
        let _ = systemd::systemctl(&["stop", &self.0]);
    }
}

/// Kubernetes on a systemd host (issue 15): `SystemdCgroup = true` in the handler's
/// options. The kubelet names the pod's slice as its `cgroup_parent`; containerd hands the
/// runtime `--systemd-cgroup` and `<slice>:cri-containerd:<id>`. Each container must run
/// in its own scope in that slice (systemd's `a-b.slice` nesting), with the CRI memory
/// limit in the scope's memory.max and in systemd's MemoryMax, see the limit from inside,
/// and leave no scope behind once removed.
fn pod_systemd_cgroup(test: &str, handler: &str) {
    if !systemd::host_runs_systemd() {
        eprintln!(
            "{test}: skipped: needs a host that runs systemd (no /run/systemd/system; \
             the systemd guest runs it: integration/systemd-vm/run.sh 'cri patina')"
        );
        return;
    }
    // Slice names may not contain '-' other than as the nesting separator.
    let top = format!("ptest{}x{handler}", std::process::id());
    let slice = format!("{top}-pod.slice");
    let _guard = SliceGuard(format!("{top}.slice"));
    let c = Containerd::start_cri_systemd(&format!("cri-sd-{handler}"));
    let limit = 48 * MIB;
    let (id, pod) = runtime().block_on(async {
        let mut cl = connect(c.address()).await;
        let mut config = pod_config(&c, &format!("sd-{handler}"));
        config.linux.as_mut().unwrap().cgroup_parent = slice.clone();
        let pod = cl.run_pod(&config, handler).await;
        let sandbox = ScopeView::of(cl.pod_pid(&pod).await).expect("sandbox's cgroup");
        assert_eq!(
            sandbox.cgroup,
            format!("/{top}.slice/{slice}/cri-containerd-{pod}.scope"),
            "the pause container's scope"
        );
        let cfg = container_config("sd", &["sleep", "1000"], limit);
        let id = cl.create(&pod, &config, cfg).await;
        cl.start(&id).await;
        let view = ScopeView::of(cl.container_pid(&id).await).expect("container's cgroup");
        assert_eq!(
            view.cgroup,
            format!("/{top}.slice/{slice}/cri-containerd-{id}.scope")
        );
        assert_eq!(view.file("memory.max"), limit.to_string());
        assert_eq!(view.show(&["MemoryMax"]), format!("MemoryMax={limit}"));
        assert_eq!(view.show(&["Delegate"]), "Delegate=yes");
        // From inside: the container's own cgroup (its namespace's root, or the scope's
        // path without one) has the limit.
        let r = cl
            .exec(
                &id,
                &[
                    "sh",
                    "-c",
                    "cat /sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/memory.max",
                ],
                10,
            )
            .await
            .expect("ExecSync");
        assert_eq!(
            String::from_utf8_lossy(&r.stdout).trim(),
            limit.to_string(),
            "memory.max seen inside; stderr {}",
            String::from_utf8_lossy(&r.stderr)
        );
        cl.stop(&id, 0).await;
        cl.remove(&id).await;
        assert!(
            view.gone(),
            "{} still listed after RemoveContainer",
            view.unit
        );
        cl.remove_pod(&pod).await;
        assert!(
            sandbox.gone(),
            "{} still listed after RemovePodSandbox",
            sandbox.unit
        );
        (id, pod)
    });
    let left: Vec<String> = systemd::scopes()
        .into_iter()
        .filter(|s| s.contains(&id) || s.contains(&pod))
        .collect();
    assert!(left.is_empty(), "scopes left: {left:?}");
}

#[test]
fn cri_systemd_cgroup_patina_handler() {
    pod_systemd_cgroup("cri_systemd_cgroup_patina_handler", "patina");
}

#[test]
fn cri_systemd_cgroup_runc_handler() {
    pod_systemd_cgroup("cri_systemd_cgroup_runc_handler", "runc");
}

/// ExecSync under stress, as probes hit a node: `CRI_EXEC_STRESS` ExecSyncs (default
/// 1000: about 13 s on the patina handler, 33 s on the runc handler, on 2 cores), 8 at a
/// time, into one container, of processes that exit at once: output on both streams with
/// the exec's number in it and an exit code of its own, or `true` (no output). Each must
/// come back with exactly its output and code within [`EXEC_DEADLINE`]: an exec whose
/// output or its end never reaches containerd (the ExecSync that hung 330 s: the shim
/// closed an output FIFO before containerd's reader had opened it) fails the test
/// instead of hanging it. Afterwards the shim holds as many descriptors as before.
fn exec_sync_stress(handler: &str) {
    let total = env_n("CRI_EXEC_STRESS", 1000);
    let c = Containerd::start_cri(&format!("cri-stress-{handler}"));
    runtime().block_on(async {
        let mut cl = connect(c.address()).await;
        let name = format!("stress-{handler}");
        let config = pod_config(&c, &name);
        let pod = cl.run_pod(&config, handler).await;
        let id = cl
            .create(
                &pod,
                &config,
                container_config("app", &["sleep", "100000"], 0),
            )
            .await;
        cl.start(&id).await;
        let shim = c.shim_pids();
        assert_eq!(shim.len(), 1, "one shim for the pod: {shim:?}");
        let fds_before = descriptors(shim[0]);
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..STRESS_PARALLEL {
            let (rt, id, next) = (cl.rt.clone(), id.clone(), next.clone());
            workers.spawn(stress_worker(rt, id, next, total));
        }
        let mut took = Vec::with_capacity(total);
        while let Some(done) = workers.join_next().await {
            match done.expect("stress worker") {
                Ok(mut t) => took.append(&mut t),
                Err(e) => {
                    workers.abort_all();
                    panic!("{e}\ncontainerd log:\n{}", c.tail());
                }
            }
        }
        let wall = started.elapsed();
        assert_eq!(took.len(), total);
        let max = took.iter().cloned().fold(0.0, f64::max);
        println!(
            "{handler}: {total} ExecSync, {STRESS_PARALLEL} in parallel: {:.1} s, {:.0}/s, \
             median {:.1} ms, max {max:.1} ms",
            wall.as_secs_f64(),
            total as f64 / wall.as_secs_f64(),
            median(&mut took),
        );
        // Every exec's pipes and FIFOs are closed in the shim: nothing of them is left.
        let settled = wait_for(Duration::from_secs(10), || {
            (descriptors(shim[0]).len() == fds_before.len()).then_some(())
        });
        assert!(
            settled.is_some(),
            "the shim's descriptors, before: {fds_before:?}, after: {:?}",
            descriptors(shim[0])
        );
        let pod_pid = cl.pod_pid(&pod).await;
        let pod_cgroup = memory_cgroup(cl.container_pid(&id).await);
        cl.stop(&id, 0).await;
        cl.remove(&id).await;
        cl.remove_pod(&pod).await;
        assert_pod_gone(&c, &mut cl, pod_pid, pod_cgroup.parent().unwrap()).await;
    });
}

/// What `pid`'s descriptors point to.
fn descriptors(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|l| l.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

const STRESS_PARALLEL: usize = 8;
/// Far above an ExecSync's worst time on a loaded 2-core machine (3.7 s at most, seen
/// beside 3 CPU burners), far below what a lost end of an output costs (forever).
const EXEC_DEADLINE: Duration = Duration::from_secs(30);

/// Takes exec numbers from `next` until `total`; each one's time in ms, or what went wrong.
async fn stress_worker(
    mut rt: RuntimeServiceClient<Channel>,
    id: String,
    next: Arc<AtomicUsize>,
    total: usize,
) -> Result<Vec<f64>, String> {
    let mut took = Vec::new();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= total {
            return Ok(took);
        }
        let (cmd, want) = stress_exec(n);
        let req = cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: cmd.clone(),
            timeout: EXEC_DEADLINE.as_secs() as i64,
        };
        let t = Instant::now();
        let r = tokio::time::timeout(EXEC_DEADLINE, rt.exec_sync(req))
            .await
            .map_err(|_| format!("ExecSync #{n} {cmd:?}: no answer in {EXEC_DEADLINE:?}"))?
            .map_err(|e| format!("ExecSync #{n} {cmd:?}: {e}"))?
            .into_inner();
        took.push(t.elapsed().as_secs_f64() * 1000.0);
        let got = (r.exit_code, r.stdout, r.stderr);
        if got != want {
            return Err(format!("ExecSync #{n} {cmd:?}: got {got:?}, want {want:?}"));
        }
    }
}

/// Exec number `n`: its command and (exit code, stdout, stderr).
fn stress_exec(n: usize) -> (Vec<String>, (i32, Vec<u8>, Vec<u8>)) {
    if n % 4 == 3 {
        return (vec!["true".into()], (0, Vec::new(), Vec::new()));
    }
    let code = (n % 5) as i32;
    let cmd = ["sh", "-c", "echo out$0; echo err$0 >&2; exit $1"];
    let mut cmd: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
    cmd.extend([n.to_string(), code.to_string()]);
    let want = (
        code,
        format!("out{n}\n").into_bytes(),
        format!("err{n}\n").into_bytes(),
    );
    (cmd, want)
}

#[test]
fn cri_exec_sync_stress_patina_handler() {
    exec_sync_stress("patina");
}

#[test]
fn cri_exec_sync_stress_runc_handler() {
    exec_sync_stress("runc");
}

/// utime+stime+cutime+cstime of `pid`, in seconds (reaped children included).
fn cpu_total(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11..15]
        .iter()
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .sum();
    ticks as f64 / 100.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn env_n(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Figures {
    start_ms: Vec<f64>,
    start_cpu_ms: f64,
    exec_ms: Vec<f64>,
    exec_cpu_ms: f64,
}

/// Benchmark (bench/cri.sh): pod start = RunPodSandbox + CreateContainer + StartContainer of
/// one container, and ExecSync `echo ok`; wall time (median) and CPU (mean; containerd,
/// the pod's shim and everything they reaped: runtime calls, exec'd processes) of the
/// patina handler vs the runc handler, interleaved on one containerd.
#[test]
#[ignore]
fn cri_bench() {
    let pods = env_n("PODS", 20);
    let execs = env_n("EXECS", 100);
    let c = Containerd::start_cri("cri-bench");
    let containerd = c.pid().unwrap();
    let handlers = ["patina", "runc"];
    let mut figures: HashMap<&str, Figures> = HashMap::new();
    runtime().block_on(async {
        let mut cl = connect(c.address()).await;
        let sleeper = || container_config("app", &["sleep", "1000"], 0);
        // Pod start, interleaved; one pod at a time, so the one shim is the pod's.
        for i in 0..pods + 1 {
            for k in 0..2 {
                let handler = handlers[(i + k) % 2];
                let config = pod_config(&c, &format!("b{i}-{handler}"));
                let cpu0 = cpu_total(containerd);
                let t = Instant::now();
                let pod = cl.run_pod(&config, handler).await;
                let id = cl.create(&pod, &config, sleeper()).await;
                cl.start(&id).await;
                let wall = t.elapsed().as_secs_f64() * 1000.0;
                let shim = c.shim_pids();
                assert_eq!(shim.len(), 1);
                let cpu = cpu_total(containerd) - cpu0 + cpu_total(shim[0]);
                if i > 0 {
                    // the first round warms up
                    let f = figures.entry(handler).or_default();
                    f.start_ms.push(wall);
                    f.start_cpu_ms += cpu * 1000.0 / pods as f64;
                }
                cl.stop(&id, 0).await;
                cl.remove(&id).await;
                cl.remove_pod(&pod).await;
                wait_for(Duration::from_secs(10), || {
                    c.shim_pids().is_empty().then_some(())
                });
            }
        }
        // ExecSync, one pod per handler.
        for handler in handlers {
            let config = pod_config(&c, &format!("exec-{handler}"));
            let pod = cl.run_pod(&config, handler).await;
            let id = cl.create(&pod, &config, sleeper()).await;
            cl.start(&id).await;
            let shim = c.shim_pids()[0];
            for _ in 0..5 {
                cl.exec(&id, &["echo", "ok"], 10).await.unwrap();
            }
            let cpu0 = cpu_total(containerd) + cpu_total(shim);
            let f = figures.entry(handler).or_default();
            for _ in 0..execs {
                let t = Instant::now();
                let r = cl.exec(&id, &["echo", "ok"], 10).await.unwrap();
                f.exec_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(r.stdout, b"ok\n");
            }
            f.exec_cpu_ms =
                (cpu_total(containerd) + cpu_total(shim) - cpu0) * 1000.0 / execs as f64;
            cl.stop(&id, 0).await;
            cl.remove(&id).await;
            cl.remove_pod(&pod).await;
            wait_for(Duration::from_secs(10), || {
                c.shim_pids().is_empty().then_some(())
            });
        }
    });
    let mut p = figures.remove("patina").unwrap();
    let mut r = figures.remove("runc").unwrap();
    let rows = [
        (
            "pod start, wall ms (median)",
            median(&mut p.start_ms),
            median(&mut r.start_ms),
            "<= 0.7",
        ),
        (
            "pod start, CPU ms (mean)",
            p.start_cpu_ms,
            r.start_cpu_ms,
            "<= 0.7",
        ),
        (
            "ExecSync, wall ms (median)",
            median(&mut p.exec_ms),
            median(&mut r.exec_ms),
            "",
        ),
        (
            "ExecSync, CPU ms (mean)",
            p.exec_cpu_ms,
            r.exec_cpu_ms,
            "<= 0.5",
        ),
    ];
    println!("\n{pods} pods, {execs} ExecSync per handler\n");
    println!("| | patina | runc | patina/runc | target |\n|---|---|---|---|---|");
    for (what, p, r, target) in rows {
        println!("| {what} | {p:.1} | {r:.1} | {:.2}x | {target} |", p / r);
    }
}
