//! `batch run FILE`: run the Jobs and CronJobs of a file for real (conformance-io.md §6).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use batch_core::clock::SystemClock;
use batch_core::executor::Executor;
use batch_core::model::{CronJob, Job, JobConditionType, JobStatus, Manifest};
use batch_core::runner::{CronJobHandle, JobHandle, RunEvent, RunEventKind, Runner};
use batch_core::store::StateStore as _;
use batch_executor_docker::{DockerExecutor, DockerExecutorConfig};
use batch_executor_k8s::{K8sExecutor, K8sExecutorConfig};
use batch_executor_local::{LocalExecutor, LocalExecutorConfig, ShimCommand, Supervisor};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

/// Arguments of `batch run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The manifest file (YAML or JSON, one or more Job and CronJob documents); `-` reads
    /// stdin.
    #[arg(value_name = "FILE")]
    file: String,
    /// Where pods run: `local` (processes on this machine, the default), `docker`
    /// (containers on the Docker engine at `DOCKER_HOST`, else the default socket), `k8s`
    /// (pods on a Kubernetes cluster, this program acting as their Job controller) or
    /// `k8s-cluster` (the Jobs and CronJobs themselves applied to the cluster, its own
    /// controllers run them; this program follows their status). The cluster: `KUBECONFIG`
    /// or `~/.kube/config`, else the in-cluster configuration.
    #[arg(long, default_value = "local", value_name = "EXECUTOR")]
    executor: String,
    /// `k8s`, `k8s-cluster`: the namespace (default: the kubeconfig context's, else
    /// `default`).
    #[arg(long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// `k8s`, `k8s-cluster`: the kubeconfig context (default: the current one).
    #[arg(long, value_name = "CONTEXT")]
    context: Option<String>,
    /// Output: `text` (a live progress line on a terminal, plain lines otherwise) or `json`
    /// (JSON lines as `batch simulate`, ending with one `{"final":…}` line per Job).
    #[arg(long, short = 'o', default_value = "text", value_name = "FORMAT")]
    output: String,
    /// Also print each container's output when its pod ends (`log` events in JSON).
    #[arg(long)]
    logs: bool,
    /// Where batch keeps pods, their scratch directories and logs (default:
    /// `$XDG_DATA_HOME/batch`, else `~/.local/share/batch`).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// How hard the state store works to keep what it recorded: `full` (fsync at every
    /// write: survives a power loss; the default) or `process` (survives a crash or kill of
    /// this program, may lose the last writes on a power loss; faster). See
    /// docs/durability.md.
    #[arg(long, default_value = "full", value_name = "LEVEL")]
    durability: String,
}

/// Exit status when interrupted (128 + SIGINT).
pub(crate) const INTERRUPTED: u8 = 130;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Text { live: bool },
}

/// Exit statuses: 0 every Job completed, 1 a Job failed, 2 unreadable or invalid input (or
/// an executor that cannot be used), 130 interrupted.
pub(crate) fn run(args: &Args) -> u8 {
    // Every runner decision is a `tracing` event; BATCH_LOG (e.g. `info`, `batch_core=debug`)
    // sends them to stderr.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("BATCH_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let format = match args.output.as_str() {
        "json" => Format::Json,
        "text" => Format::Text {
            live: std::io::stdout().is_terminal(),
        },
        other => {
            eprintln!("error: --output: unknown format {other:?} (use text or json)");
            return 2;
        }
    };
    let (jobs, cron_jobs) = match load(&args.file) {
        Ok(found) => found,
        Err(lines) => {
            for line in lines {
                eprintln!("{line}");
            }
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 2;
        }
    };
    runtime.block_on(run_all(args, format, jobs, cron_jobs))
}

/// The Jobs and CronJobs of the file, defaulted and validated; errors are the lines to print.
fn load(file: &str) -> Result<(Vec<Job>, Vec<CronJob>), Vec<String>> {
    let bytes = crate::read_input(file).map_err(|m| vec![m])?;
    let origin = if file == "-" { "<stdin>" } else { file };
    let documents =
        batch_core::loader::load_bytes(&bytes, origin).map_err(|e| vec![format!("error: {e}")])?;
    let mut jobs = Vec::new();
    let mut cron_jobs = Vec::new();
    let mut errors = Vec::new();
    for (i, document) in documents.iter().enumerate() {
        let invalid = document.validate();
        if !invalid.is_empty() {
            for error in invalid.iter() {
                errors.push(format!("error: {origin}: document {}: {error}", i + 1));
            }
            continue;
        }
        match &document.object {
            Some(Manifest::Job(job)) => jobs.push((**job).clone()),
            Some(Manifest::CronJob(cron_job)) => cron_jobs.push((**cron_job).clone()),
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if jobs.is_empty() && cron_jobs.is_empty() {
        return Err(vec![format!(
            "error: {origin}: no Job or CronJob document to run"
        )]);
    }
    Ok((jobs, cron_jobs))
}

/// `--state-dir`, or `$XDG_DATA_HOME/batch`, or `~/.local/share/batch`.
pub(crate) fn default_state_dir(given: Option<&PathBuf>) -> PathBuf {
    if let Some(dir) = given {
        return dir.clone();
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share")))
        .unwrap_or_else(std::env::temp_dir);
    data.join("batch")
}

/// The line that ends a Job's run: `{"final":{…}}` in JSON (with the Job's name when the
/// file has several), else its outcome, counts, indexes and failure reason.
pub(crate) fn final_line(json: bool, name: &str, status: &JobStatus, named: bool) -> String {
    if json {
        let line = if named {
            serde_json::json!({"final": {"job": name, "status": status}})
        } else {
            serde_json::json!({"final": {"status": status}})
        };
        return line.to_string();
    }
    let outcome = if completed(status) {
        "Complete"
    } else if failed(status) {
        "Failed"
    } else {
        "not finished"
    };
    let mut line = format!(
        "job/{name}: {outcome} — succeeded {}, failed {}",
        status.succeeded, status.failed
    );
    if let Some(ix) = Some(status.completed_indexes.as_str()).filter(|s| !s.is_empty()) {
        line.push_str(&format!(", completed indexes {ix}"));
    }
    if let Some(ix) = status.failed_indexes.as_deref().filter(|s| !s.is_empty()) {
        line.push_str(&format!(", failed indexes {ix}"));
    }
    if let Some(c) = status
        .condition(&JobConditionType::Failed)
        .filter(|c| c.status == batch_core::model::ConditionStatus::True)
    {
        line.push_str(&format!(" ({}: {})", c.reason, c.message));
    }
    line
}

/// Builds the executor chosen with `--executor`; the error is the one line to print.
///
/// `docker` connects to the engine at `DOCKER_HOST` (else the default socket). Its pods are
/// labelled with the state directory (the executor's
/// [instance](batch_executor_docker::DockerExecutorConfig::instance)), so runs with
/// different `--state-dir`s never see each other's pods, as with the local executor.
///
/// `k8s` connects to the cluster of the kubeconfig (or the in-cluster configuration) and
/// creates the pods in the configured namespace.
pub(crate) async fn executor(
    name: &str,
    state_dir: PathBuf,
    k8s: &K8sExecutorConfig,
) -> Result<Arc<dyn Executor>, String> {
    match name {
        "local" => {
            // Each pod runs under a shim (this program, `batch __shim`), so pods outlive a
            // crash of the runner and a restarted `batch run` learns how they ended.
            let program = std::env::current_exe()
                .map_err(|e| format!("error: cannot find the batch program itself: {e}"))?;
            let config = LocalExecutorConfig {
                root: state_dir.join("local"),
                supervisor: Supervisor::Shim(ShimCommand {
                    program,
                    args: vec!["__shim".to_owned()],
                }),
                ..LocalExecutorConfig::default()
            };
            LocalExecutor::new(config)
                .map(|e| Arc::new(e) as Arc<dyn Executor>)
                .map_err(|e| format!("error: local executor: {e}"))
        }
        "docker" => {
            let config = DockerExecutorConfig {
                instance: docker_instance(&state_dir),
                ..DockerExecutorConfig::default()
            };
            DockerExecutor::connect(config)
                .await
                .map(|e| Arc::new(e) as Arc<dyn Executor>)
                // The message names the engine's address and the cause.
                .map_err(|e| format!("error: docker executor: {}", e.message()))
        }
        "k8s" => K8sExecutor::connect(k8s.clone())
            .await
            .map(|e| Arc::new(e) as Arc<dyn Executor>)
            .map_err(|e| format!("error: k8s executor: {}", e.message())),
        "k8s-cluster" => Err(
            "error: --executor k8s-cluster: the cluster runs the Job itself; there are no \
             pods of this program's to show (use kubectl logs)"
                .to_owned(),
        ),
        other => Err(format!(
            "error: --executor: unknown executor {other:?} (use local, docker, k8s or \
             k8s-cluster)"
        )),
    }
}

/// The Docker executor's instance for a state directory: its absolute path.
fn docker_instance(state_dir: &std::path::Path) -> String {
    std::path::absolute(state_dir)
        .unwrap_or_else(|_| state_dir.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

async fn run_all(args: &Args, format: Format, jobs: Vec<Job>, cron_jobs: Vec<CronJob>) -> u8 {
    let k8s = K8sExecutorConfig {
        namespace: args.namespace.clone(),
        context: args.context.clone(),
    };
    if args.executor == "k8s-cluster" {
        return crate::cluster::run(k8s, format == Format::Json, jobs, cron_jobs).await;
    }
    let state_dir = default_state_dir(args.state_dir.as_ref());
    let executor = match executor(&args.executor, state_dir.clone(), &k8s).await {
        Ok(e) => e,
        Err(message) => {
            eprintln!("{message}");
            return 2;
        }
    };
    let durability = match args.durability.as_str() {
        "full" => batch_core::store::Durability::Full,
        "process" => batch_core::store::Durability::Process,
        other => {
            eprintln!("error: --durability: unknown level {other:?} (use full or process)");
            return 2;
        }
    };
    let store = match open_store(&state_dir, durability) {
        Ok(store) => store,
        Err(message) => {
            eprintln!("{message}");
            return 2;
        }
    };
    // One `batch run` per Job or CronJob and state directory at a time: two runners of the
    // same Job would both start its pods.
    let mut locks = Vec::new();
    for (kind, name) in jobs
        .iter()
        .map(|j| ("job", j.name()))
        .chain(cron_jobs.iter().map(|c| ("cronjob", c.name())))
    {
        match lock_object(&state_dir, kind, name) {
            Ok(lock) => locks.push(lock),
            Err(message) => {
                eprintln!("{message}");
                return 2;
            }
        }
    }
    let stored = match store.load() {
        Ok(state) => state,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let store = match crate::crash::CrashingStore::from_env(store) {
        Ok(store) => store,
        Err(message) => {
            eprintln!("{message}");
            return 2;
        }
    };
    let runner = Runner::new(Arc::clone(&executor), Arc::new(SystemClock)).with_store(store);
    let printer = Printer::new(format, args.logs, Arc::clone(&executor));
    let mut handles: Vec<JobHandle> = Vec::new();
    let mut cron_handles: Vec<CronJobHandle> = Vec::new();
    let mut failed_submit = false;
    for job in jobs {
        let name = job.name().to_owned();
        let resumable = stored
            .jobs
            .get(&name)
            .filter(|r| r.owner_uid().is_none())
            .is_some_and(|r| same_job(r, &job) && !reported(&state_dir, r));
        if resumable {
            match runner.resume_job(&name) {
                Ok(Some(h)) => {
                    let s = h.status();
                    printer.note(&format!(
                        "job/{name}: resuming the run recorded in {} (succeeded {}, failed {}; \
                         its pods are adopted)",
                        state_dir.display(),
                        s.succeeded,
                        s.failed
                    ));
                    handles.push(h);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    eprintln!("error: job {name}: cannot resume it: {e}");
                    failed_submit = true;
                    continue;
                }
            }
        }
        // A Job name is unique, as on a cluster: running a file again replaces the earlier
        // run of the same Job (its record, pods and logs).
        if let Err(message) = replace_job(&runner, &name, stored.jobs.contains_key(&name)).await {
            eprintln!("{message}");
            failed_submit = true;
            continue;
        }
        match runner.submit_job(job) {
            Ok(h) => handles.push(h),
            Err(e) => {
                eprintln!("error: job {name}: {e}");
                failed_submit = true;
            }
        }
    }
    for cron_job in cron_jobs {
        let name = cron_job.name().to_owned();
        let resumable = stored
            .cron_jobs
            .get(&name)
            .is_some_and(|c| same_cron_job(c, &cron_job));
        if resumable {
            match runner.resume_cron_job(&name) {
                Ok(Some(h)) => {
                    printer.note(&format!(
                        "cronjob/{name}: resuming the run recorded in {} ({} jobs)",
                        state_dir.display(),
                        h.jobs().len()
                    ));
                    cron_handles.push(h);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    eprintln!("error: cronjob {name}: cannot resume it: {e}");
                    failed_submit = true;
                    continue;
                }
            }
        }
        if stored.cron_jobs.contains_key(&name) {
            match runner.resume_cron_job(&name) {
                Ok(Some(old)) => {
                    let _ = old.stop().await;
                }
                Ok(None) => {}
                Err(e) => {
                    eprintln!("error: cronjob {name}: cannot replace its earlier run: {e}");
                    failed_submit = true;
                    continue;
                }
            }
        }
        match runner.submit_cron_job(cron_job) {
            Ok(h) => cron_handles.push(h),
            Err(e) => {
                eprintln!("error: cronjob {name}: {e}");
                failed_submit = true;
            }
        }
    }
    if failed_submit {
        for h in &handles {
            let _ = h.delete().await;
        }
        for h in &cron_handles {
            let _ = h.stop().await;
        }
        return 2;
    }

    let mut event_tasks = Vec::new();
    for h in &handles {
        event_tasks.push(tokio::spawn(printer.clone().follow(h.events())));
    }
    for h in &cron_handles {
        event_tasks.push(tokio::spawn(printer.clone().follow(h.events())));
    }
    let progress = match format {
        Format::Text { live: true } => Some(tokio::spawn(
            printer
                .clone()
                .progress(handles.clone(), cron_handles.clone()),
        )),
        _ => None,
    };

    let all_done = async {
        for h in &handles {
            let _ = h.wait().await;
        }
        if !cron_handles.is_empty() {
            // CronJobs run until interrupted.
            std::future::pending::<()>().await;
        }
    };
    let interrupted = tokio::select! {
        () = all_done => false,
        r = tokio::signal::ctrl_c() => r.is_ok(),
    };
    if interrupted {
        printer.note("interrupted: stopping pods (grace period applies; Ctrl-C again to abort)");
        let stop = async {
            for h in &cron_handles {
                let _ = h.stop().await;
            }
            for h in &handles {
                if !h.is_finished() {
                    let _ = h.delete().await;
                }
            }
        };
        tokio::select! {
            () = stop => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    // Let the event printers catch up with what was already sent.
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Some(p) = progress {
        p.abort();
    }
    for t in event_tasks {
        t.abort();
    }
    printer.clear_progress();

    let mut code = 0u8;
    for h in &handles {
        let status = h.status();
        if failed(&status) {
            code = 1;
        }
        printer.final_status(h.name(), &status, handles.len() > 1);
        if status.is_finished() {
            mark_reported(&state_dir, h.name(), h.uid());
        }
    }
    for h in &cron_handles {
        printer.final_cron_status(h.name(), &h.status());
    }
    if interrupted { INTERRUPTED } else { code }
}

/// Opens (creating it if needed) the state store `DIR/state.db`.
pub(crate) fn open_store(
    state_dir: &std::path::Path,
    durability: batch_core::store::Durability,
) -> Result<Arc<dyn batch_core::store::StateStore>, String> {
    std::fs::create_dir_all(state_dir).map_err(|e| {
        format!(
            "error: cannot create the state directory {}: {e}",
            state_dir.display()
        )
    })?;
    let path = state_dir.join("state.db");
    batch_core::store::SqliteStore::open_with(&path, durability)
        .map(|s| Arc::new(s) as Arc<dyn batch_core::store::StateStore>)
        .map_err(|e| match e {
            batch_core::store::StoreError::Corrupt { .. } => format!(
                "error: {e}\nhint: move {} (and any state.db-wal beside it) away to start \
                 afresh, or use another --state-dir",
                path.display()
            ),
            other => format!("error: {other}"),
        })
}

/// Holds `DIR/locks/<kind>-<name>.lock` for as long as the value lives.
fn lock_object(
    state_dir: &std::path::Path,
    kind: &str,
    name: &str,
) -> Result<nix::fcntl::Flock<std::fs::File>, String> {
    let dir = state_dir.join("locks");
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("error: cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{kind}-{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("error: cannot open {}: {e}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(
        |(_, errno)| match errno {
            nix::errno::Errno::EWOULDBLOCK => format!(
                "error: {kind} {name} is being run by another batch process with the state \
                 directory {} (wait for it, or stop it first)",
                state_dir.display()
            ),
            other => format!("error: cannot lock {}: {other}", path.display()),
        },
    )
}

/// Whether a stored Job is the run of this manifest (same spec once defaulted) and still
/// to be followed: unfinished, or finished without a `batch run` having reported its end
/// (it was killed first). A deleting Job is never resumed.
fn same_job(record: &batch_core::store::JobRecord, job: &Job) -> bool {
    if record.job.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let mut job = job.clone();
    batch_core::defaults::prepare_job_for_create(&mut job, record.uid());
    let mut stored = record.job.spec.clone();
    // `suspend` is changed by the runner itself.
    stored.suspend = job.spec.suspend;
    stored == job.spec
}

/// The file saying which run of a Job a `batch run` has reported the end of (its UID).
fn reported_file(state_dir: &std::path::Path, name: &str) -> PathBuf {
    state_dir.join("locks").join(format!("job-{name}.reported"))
}

/// Whether a `batch run` reported this stored Job's end: running the file again then starts
/// a new run; otherwise (the reporting run was killed) the stored outcome is reported.
fn reported(state_dir: &std::path::Path, record: &batch_core::store::JobRecord) -> bool {
    record.job.status.is_finished()
        && std::fs::read_to_string(reported_file(state_dir, record.name()))
            .is_ok_and(|uid| uid.trim() == record.uid())
}

fn mark_reported(state_dir: &std::path::Path, name: &str, uid: &str) {
    let path = reported_file(state_dir, name);
    if let Err(e) = std::fs::write(&path, uid) {
        eprintln!("warning: cannot write {}: {e}", path.display());
    }
}

/// Whether a stored CronJob is the run of this manifest (same spec once defaulted).
fn same_cron_job(stored: &CronJob, cron_job: &CronJob) -> bool {
    let mut cron_job = cron_job.clone();
    batch_core::defaults::default_cron_job(&mut cron_job);
    let mut spec = stored.spec.clone();
    spec.suspend = cron_job.spec.suspend;
    spec == cron_job.spec
}

/// Removes an earlier run of a Job: its record (resumed, then deleted: its pods are deleted
/// gracefully) and any pods left with its name label.
async fn replace_job(runner: &Runner, name: &str, recorded: bool) -> Result<(), String> {
    if recorded {
        match runner.resume_job(name) {
            Ok(Some(old)) => {
                if let Err(e) = old.delete().await {
                    return Err(format!(
                        "error: job {name}: cannot remove its earlier run: {e}"
                    ));
                }
            }
            Ok(None) => {}
            Err(e) => {
                return Err(format!(
                    "error: job {name}: cannot remove its earlier run: {e}"
                ));
            }
        }
    }
    let executor = runner.executor();
    let selector = batch_core::executor::LabelSelector::from([(
        batch_core::executor::JOB_NAME_LABEL.to_owned(),
        name.to_owned(),
    )]);
    match executor.list(&selector).await {
        Ok(old) => {
            for pod in old {
                if let Err(e) = executor.delete(&pod.name, None).await {
                    eprintln!(
                        "warning: job {name}: cannot remove pod {} of an earlier run: {e}",
                        pod.name
                    );
                }
            }
        }
        Err(e) => eprintln!("warning: job {name}: cannot list pods of an earlier run: {e}"),
    }
    Ok(())
}

pub(crate) fn failed(status: &JobStatus) -> bool {
    status
        .condition(&JobConditionType::Failed)
        .is_some_and(|c| c.status == batch_core::model::ConditionStatus::True)
}

pub(crate) fn completed(status: &JobStatus) -> bool {
    status
        .condition(&JobConditionType::Complete)
        .is_some_and(|c| c.status == batch_core::model::ConditionStatus::True)
}

/// Writes events, logs, the progress line and the final lines, keeping them from
/// interleaving.
#[derive(Debug, Clone)]
struct Printer {
    format: Format,
    logs: bool,
    executor: Arc<dyn Executor>,
    /// Serializes writes; holds whether a progress line is on screen.
    out: Arc<std::sync::Mutex<bool>>,
}

#[derive(Serialize)]
struct LogLine<'a> {
    t: String,
    event: &'static str,
    pod: &'a str,
    container: &'a str,
    line: &'a str,
}

impl Printer {
    fn new(format: Format, logs: bool, executor: Arc<dyn Executor>) -> Self {
        Printer {
            format,
            logs,
            executor,
            out: Arc::new(std::sync::Mutex::new(false)),
        }
    }

    /// Prints lines above the progress line.
    fn print(&self, lines: &[String]) {
        let mut shown = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut stdout = std::io::stdout().lock();
        if *shown {
            let _ = write!(stdout, "\r\x1b[2K");
            *shown = false;
        }
        for line in lines {
            let _ = writeln!(stdout, "{line}");
        }
        let _ = stdout.flush();
    }

    fn note(&self, message: &str) {
        match self.format {
            Format::Json => eprintln!("{message}"),
            Format::Text { .. } => self.print(&[message.to_owned()]),
        }
    }

    async fn follow(self, mut events: tokio::sync::broadcast::Receiver<RunEvent>) {
        loop {
            match events.recv().await {
                Ok(event) => self.event(&event).await,
                Err(RecvError::Lagged(n)) => {
                    self.note(&format!(
                        "warning: {n} events were dropped (output too slow)"
                    ));
                }
                Err(RecvError::Closed) => break,
            }
        }
    }

    async fn event(&self, event: &RunEvent) {
        let mut lines = Vec::new();
        match self.format {
            Format::Json => {
                if let Some(sim) = event.to_sim_event() {
                    lines.push(sim.to_string());
                }
            }
            Format::Text { .. } => {
                let why = match &event.kind {
                    RunEventKind::Evict { pod } => self
                        .observation(&event.job, pod)
                        .await
                        .filter(|p| !p.reason.is_empty())
                        .map(|p| (p.reason, p.message)),
                    _ => None,
                };
                if let Some(text) = text_line(event, why) {
                    lines.push(text);
                }
            }
        }
        if self.logs
            && let RunEventKind::Exit { pod, .. } | RunEventKind::Evict { pod } = &event.kind
        {
            lines.extend(self.log_lines(pod, event).await);
        }
        if !lines.is_empty() {
            self.print(&lines);
        }
    }

    /// What the executor reports about a pod of a Job (None: gone, or not readable).
    async fn observation(
        &self,
        job: &str,
        pod: &str,
    ) -> Option<batch_core::executor::PodObservation> {
        let selector = batch_core::executor::LabelSelector::from([(
            batch_core::executor::JOB_NAME_LABEL.to_owned(),
            job.to_owned(),
        )]);
        self.executor
            .list(&selector)
            .await
            .ok()?
            .into_iter()
            .find(|p| p.name == pod)
    }

    /// The output of every container of a pod that just ended.
    async fn log_lines(&self, pod: &str, event: &RunEvent) -> Vec<String> {
        let mut lines = Vec::new();
        let containers: Vec<String> = self
            .observation(&event.job, pod)
            .await
            .map(|p| p.containers.into_iter().map(|c| c.name).collect())
            .unwrap_or_default();
        let t = event.t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        for container in containers {
            let Ok(bytes) = self.executor.logs(pod, &container).await else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines() {
                match self.format {
                    Format::Json => {
                        let record = LogLine {
                            t: t.clone(),
                            event: "log",
                            pod,
                            container: &container,
                            line,
                        };
                        if let Ok(json) = serde_json::to_string(&record) {
                            lines.push(json);
                        }
                    }
                    Format::Text { .. } => lines.push(format!("  {pod}/{container}: {line}")),
                }
            }
        }
        lines
    }

    /// Redraws a one-line summary of every Job about five times a second.
    async fn progress(self, handles: Vec<JobHandle>, cron_handles: Vec<CronJobHandle>) {
        let mut last = String::new();
        loop {
            let mut parts = Vec::new();
            for h in &handles {
                parts.push(progress_text(h));
            }
            for h in &cron_handles {
                for child in h.jobs() {
                    if !child.is_finished() {
                        parts.push(progress_text(&child));
                    }
                }
                if parts.is_empty() {
                    let next = h
                        .status()
                        .last_schedule_time
                        .map(|t| format!("last scheduled {t}"))
                        .unwrap_or_else(|| "waiting for the first schedule".to_owned());
                    parts.push(format!("cronjob/{}: {next}", h.name()));
                }
            }
            let text = parts.join("  |  ");
            {
                let mut shown = self
                    .out
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // Redraw only when the line changed or event lines replaced it.
                if !*shown || text != last {
                    let mut stdout = std::io::stdout().lock();
                    let _ = write!(stdout, "\r\x1b[2K{text}");
                    let _ = stdout.flush();
                    *shown = true;
                }
            }
            last = text;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn clear_progress(&self) {
        self.print(&[]);
    }

    fn final_status(&self, name: &str, status: &JobStatus, named: bool) {
        self.print(&[final_line(self.format == Format::Json, name, status, named)]);
    }

    fn final_cron_status(&self, name: &str, status: &batch_core::model::CronJobStatus) {
        match self.format {
            Format::Json => {
                let line = serde_json::json!({"final": {"cronJob": name, "status": status}});
                self.print(&[line.to_string()]);
            }
            Format::Text { .. } => {
                let last = status
                    .last_schedule_time
                    .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
                self.print(&[format!("cronjob/{name}: stopped; last scheduled {last}")]);
            }
        }
    }
}

fn progress_text(h: &JobHandle) -> String {
    let job = h.job();
    let status = &job.status;
    let completions = job.spec.completions;
    let succeeded = status.succeeded;
    let mut text = format!("job/{} ", h.name());
    if let Some(total) = completions.filter(|t| *t > 0) {
        const WIDTH: i64 = 20;
        let filled = (i64::from(succeeded) * WIDTH / i64::from(total)).clamp(0, WIDTH);
        let bar: String = (0..WIDTH)
            .map(|i| if i < filled { '#' } else { '-' })
            .collect();
        text.push_str(&format!("[{bar}] {succeeded}/{total}"));
    } else {
        text.push_str(&format!("{succeeded} succeeded"));
    }
    text.push_str(&format!(
        " · {} active · {} failed",
        status.active, status.failed
    ));
    if let Some(ix) = Some(status.completed_indexes.as_str()).filter(|s| !s.is_empty()) {
        text.push_str(&format!(" · done {ix}"));
    }
    if let Some(ix) = status.failed_indexes.as_deref().filter(|s| !s.is_empty()) {
        text.push_str(&format!(" · failed {ix}"));
    }
    text
}

/// The plain-text form of an event (None: not shown in text output). `why` is the reason
/// and message the executor gives for a pod that failed without an exit code.
fn text_line(event: &RunEvent, why: Option<(String, String)>) -> Option<String> {
    let t = event.t.format("%H:%M:%S%.3f");
    let job = &event.job;
    let what = match &event.kind {
        RunEventKind::Create { pod, index } => match index {
            Some(ix) => format!("created pod {pod} (index {ix})"),
            None => format!("created pod {pod}"),
        },
        RunEventKind::Exit { pod, exit_code } => format!("pod {pod} exited with code {exit_code}"),
        RunEventKind::Evict { pod } => match why {
            // For example an image that cannot be pulled, or a deadline.
            Some((reason, message)) if message.is_empty() => {
                format!("pod {pod} failed without an exit code ({reason})")
            }
            Some((reason, message)) => {
                format!("pod {pod} failed without an exit code ({reason}: {message})")
            }
            None => format!("pod {pod} was evicted"),
        },
        RunEventKind::Delete { pod } => format!("deleting pod {pod}"),
        RunEventKind::Condition {
            type_,
            reason,
            message,
        } => {
            if message.is_empty() {
                format!("condition {type_} ({reason})")
            } else {
                format!("condition {type_} ({reason}: {message})")
            }
        }
        RunEventKind::Warning { reason, message } => format!("warning {reason}: {message}"),
        RunEventKind::JobCreate { job, .. } => format!("created job {job}"),
        RunEventKind::JobFinish { job, result } => {
            format!("job {job} finished: {}", result.as_str())
        }
        RunEventKind::JobDelete { job } => format!("deleted job {job}"),
        RunEventKind::ExecutorError {
            operation,
            message,
            retry_at,
        } => match retry_at {
            Some(at) => format!(
                "executor error in {operation}: {message} (retrying at {})",
                at.format("%H:%M:%S")
            ),
            None => format!("executor error in {operation}: {message}"),
        },
        RunEventKind::StoreError {
            operation,
            message,
            retry_at,
        } => match retry_at {
            Some(at) => format!(
                "state store error ({operation}): {message} (retrying at {})",
                at.format("%H:%M:%S")
            ),
            None => format!("state store error ({operation}): {message}"),
        },
        _ => return None,
    };
    Some(format!("{t} {job}: {what}"))
}
