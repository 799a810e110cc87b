//! Test support: the engine the tests use and the images they run. **For tests; not covered
//! by semver.**
//!
//! [`test_engine`] connects to the engine at `DOCKER_HOST` (the project's test command,
//! `scripts/test.sh`, starts a private one) and makes sure the test images exist. There is
//! no registry: the images are built through the API from a root filesystem tarball made of
//! the host's static `busybox` (Debian's `busybox-static`, every applet linked) and `bash`
//! (`bash-static`), imported with `POST /images/create?fromSrc=-` and tagged with the names
//! the tests and the Kubernetes documentation's examples use ([`TEST_IMAGES`]).
//!
//! Without an engine, [`test_engine`] prints `SKIP` and returns `None`, unless
//! `BATCH_TEST_REQUIRE_DOCKER=1`: then it panics (a missing engine fails the test).

use std::process::Command;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{CreateImageOptions, TagImageOptions};
use futures_util::StreamExt;
use tokio::sync::OnceCell;

/// The image names the tests and the documentation's examples use, all one image.
pub const TEST_IMAGES: &[&str] = &[
    "busybox:latest",
    "busybox:1.28",
    "bash:latest",
    "bash:5",
    "alpine:latest",
    "busybox:test",
];

/// Where the static binaries come from (Debian's `busybox-static` and `bash-static`).
const BUSYBOX: &str = "/bin/busybox";
const BASH: &str = "/bin/bash-static";

/// Label on the test image: the digest of its root filesystem, so an image built from the
/// same binaries is not built again.
const CONTENT_LABEL: &str = "batch.test-image";

/// Whether a missing engine fails the tests (`BATCH_TEST_REQUIRE_DOCKER=1`).
pub fn require_docker() -> bool {
    std::env::var("BATCH_TEST_REQUIRE_DOCKER").is_ok_and(|v| v == "1")
}

fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned())
}

/// Connects to the engine at `DOCKER_HOST` (negotiating the API version) and checks it
/// answers.
///
/// # Errors
///
/// The engine cannot be reached (the message names it).
pub async fn connect(host: &str) -> Result<Docker, String> {
    let docker = match host.strip_prefix("unix://") {
        Some(path) => Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION),
        None => Docker::connect_with_http(host, 120, bollard::API_DEFAULT_VERSION),
    }
    .map_err(|e| format!("cannot connect to {host}: {e}"))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| format!("no Docker engine answers at {host}: {e}"))?;
    docker
        .ping()
        .await
        .map_err(|e| format!("no Docker engine answers at {host}: {e}"))?;
    Ok(docker)
}

/// The engine of the tests, with the test images built; `None` (after printing `SKIP`)
/// when there is none and `BATCH_TEST_REQUIRE_DOCKER` is not `1`.
///
/// # Panics
///
/// No engine answers and `BATCH_TEST_REQUIRE_DOCKER=1`, or the images cannot be built.
// Test support: a missing engine must fail the test that asked for it.
#[allow(clippy::panic)]
pub async fn test_engine() -> Option<Docker> {
    static BUILT: OnceCell<()> = OnceCell::const_new();
    let host = docker_host();
    let docker = match connect(&host).await {
        Ok(d) => d,
        Err(e) if require_docker() => panic!(
            "BATCH_TEST_REQUIRE_DOCKER=1 but {e}; start one with `bash scripts/docker.sh start \
             DIR` and set DOCKER_HOST=unix://DIR/docker.sock (scripts/test.sh does both)"
        ),
        Err(e) => {
            eprintln!("SKIP: {e} (set DOCKER_HOST, or BATCH_TEST_REQUIRE_DOCKER=1 to fail)");
            return None;
        }
    };
    BUILT
        .get_or_init(|| async {
            if let Err(e) = build_test_images(&docker).await {
                panic!("cannot build the test images on {host}: {e}");
            }
        })
        .await;
    Some(docker)
}

/// The root filesystem of the test images, as a tar archive.
///
/// # Errors
///
/// The static binaries are missing (install `busybox-static` and `bash-static`).
pub fn root_filesystem() -> Result<Vec<u8>, String> {
    let read = |path: &str| {
        std::fs::read(path).map_err(|e| {
            format!("cannot read {path} ({e}): install Debian's busybox-static and bash-static")
        })
    };
    let busybox = read(BUSYBOX)?;
    let bash = read(BASH)?;
    let applets = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .map_err(|e| format!("cannot run {BUSYBOX} --list: {e}"))?;
    let applets = String::from_utf8_lossy(&applets.stdout).into_owned();
    let mut tar = tar::Builder::new(Vec::new());
    let io = |e: std::io::Error| format!("cannot build the root filesystem: {e}");
    let dir = |tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, std::io::empty())
    };
    let file = |tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, data)
    };
    for d in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "opt", "var", "home",
    ] {
        dir(&mut tar, d, 0o755).map_err(io)?;
    }
    dir(&mut tar, "tmp", 0o1777).map_err(io)?;
    file(&mut tar, "bin/busybox", 0o755, &busybox).map_err(io)?;
    file(&mut tar, "bin/bash", 0o755, &bash).map_err(io)?;
    file(
        &mut tar,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .map_err(io)?;
    file(
        &mut tar,
        "etc/group",
        0o644,
        b"root:x:0:\nnogroup:x:65534:\n",
    )
    .map_err(io)?;
    let mut linked = std::collections::BTreeSet::new();
    for applet in applets.split_whitespace() {
        if applet == "busybox" || applet == "bash" || !linked.insert(applet.to_owned()) {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .map_err(io)?;
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    h.set_mtime(0);
    tar.append_link(&mut h, "usr/bin/env", "/bin/busybox")
        .map_err(io)?;
    tar.into_inner().map_err(io)
}

/// Builds the test image through the API (import of [`root_filesystem`]) and tags it with
/// every name of [`TEST_IMAGES`]. Does nothing when they exist with the same content.
///
/// # Errors
///
/// The binaries are missing or the engine refused.
pub async fn build_test_images(docker: &Docker) -> Result<(), String> {
    let rootfs = root_filesystem()?;
    let digest = format!("{:016x}-{}", fnv1a(&rootfs), rootfs.len());
    let mut current = true;
    for name in TEST_IMAGES {
        let labels = docker
            .inspect_image(name)
            .await
            .ok()
            .and_then(|i| i.config)
            .and_then(|c| c.labels)
            .unwrap_or_default();
        if labels.get(CONTENT_LABEL) != Some(&digest) {
            current = false;
        }
    }
    if current {
        return Ok(());
    }
    let (repo, tag) = ("batch-test-rootfs", digest.as_str());
    let options = CreateImageOptions {
        from_src: Some("-".to_owned()),
        repo: Some(repo.to_owned()),
        tag: Some(tag.to_owned()),
        changes: vec![
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            "CMD [\"sh\"]".to_owned(),
            format!("LABEL {CONTENT_LABEL}={digest}"),
        ],
        ..CreateImageOptions::default()
    };
    let mut stream =
        docker.create_image(Some(options), Some(bollard::body_full(rootfs.into())), None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| format!("import of the test image failed: {e}"))?;
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            return Err(format!("import of the test image failed: {e}"));
        }
    }
    let source = format!("{repo}:{tag}");
    for name in TEST_IMAGES {
        let (image, tag) = name.split_once(':').unwrap_or((name, "latest"));
        docker
            .tag_image(
                &source,
                Some(TagImageOptions {
                    repo: Some(image.to_owned()),
                    tag: Some(tag.to_owned()),
                }),
            )
            .await
            .map_err(|e| format!("cannot tag {source} as {name}: {e}"))?;
    }
    Ok(())
}

/// FNV-1a, to recognise a root filesystem already imported.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A private Docker engine for fault tests: started, killed (SIGKILL, as a crash) and
/// restarted by the test, stopped and cleaned up on drop. Needs root and Debian's
/// `docker.io` (`dockerd`).
#[derive(Debug)]
pub struct Dockerd {
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl Dockerd {
    /// Starts an engine with its own socket and state in a new directory under `/tmp`
    /// (`--iptables=false --bridge=none`: nothing leaves the host), and waits (60 s at most)
    /// until it answers.
    ///
    /// # Errors
    ///
    /// `dockerd` cannot be started or does not answer (the message has its log's tail).
    pub fn start() -> Result<Dockerd, String> {
        let dir = std::env::temp_dir().join(format!(
            "bd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut d = Dockerd { dir, child: None };
        d.launch()?;
        Ok(d)
    }

    /// The engine's address (`unix://…/docker.sock`), for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .map_err(|e| format!("dockerd.log: {e}"))?;
        let arg = |name: &str| self.dir.join(name).display().to_string();
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--bridge=none"])
            .arg(format!("--host={}", self.host()))
            .arg(format!("--data-root={}", arg("data")))
            .arg(format!("--exec-root={}", arg("exec")))
            .arg(format!("--pidfile={}", arg("docker.pid")))
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start dockerd (install Debian's docker.io): {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let socket = self.dir.join("docker.sock");
        loop {
            if socket.exists()
                && std::os::unix::net::UnixStream::connect(&socket).is_ok()
                && Command::new("docker")
                    .arg(format!("--host={}", self.host()))
                    .arg("version")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(format!("dockerd exited ({status}): {}", self.log_tail()));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "dockerd did not answer within 60 s: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Kills the engine with SIGKILL (a crash) and waits until it has exited. Its
    /// containers keep running under their shims.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the engine again on the same state and waits until it answers (without
    /// live-restore it first stops the containers that kept running: SIGTERM, SIGKILL
    /// 10 s later, exit code 137).
    ///
    /// # Errors
    ///
    /// As [`start`](Dockerd::start).
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let _ = std::fs::remove_file(self.dir.join("docker.sock"));
        self.launch()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                // SIGTERM: the engine stops its containers and its containerd.
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Unmount what the engine left mounted under its directory (deepest first).
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let prefix = self.dir.display().to_string();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|p| p.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg("-l").arg(p).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}
