//! `batch logs JOB`: print the captured output of a Job's pods.

use std::io::Write;
use std::path::PathBuf;

use batch_core::executor::{ExecutorExt, JOB_NAME_LABEL, LabelSelector};

/// Arguments of `batch logs`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Job's name.
    #[arg(value_name = "JOB")]
    job: String,
    /// Only the pods of this completion index (Indexed Jobs).
    #[arg(long, value_name = "N")]
    index: Option<i32>,
    /// Only this container (default: every container, init containers first).
    #[arg(long, short = 'c', value_name = "NAME")]
    container: Option<String>,
    /// The executor the Job ran on: `local` (the default), `docker` (the engine at
    /// `DOCKER_HOST`, as for `batch run`) or `k8s` (the cluster of the kubeconfig).
    #[arg(long, default_value = "local", value_name = "EXECUTOR")]
    executor: String,
    /// `k8s`: the namespace (default: the kubeconfig context's, else `default`).
    #[arg(long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// `k8s`: the kubeconfig context (default: the current one).
    #[arg(long, value_name = "CONTEXT")]
    context: Option<String>,
    /// The state directory given to `batch run` (same default).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// Exit statuses: 0 printed, 1 no such Job, pod or container, 2 the executor could not be
/// reached or read.
pub(crate) fn run(args: &Args) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 2;
        }
    };
    runtime.block_on(print_logs(args))
}

async fn print_logs(args: &Args) -> u8 {
    let dir = crate::run::default_state_dir(args.state_dir.as_ref());
    let executor = match crate::run::executor(
        &args.executor,
        dir.clone(),
        &batch_executor_k8s::K8sExecutorConfig {
            namespace: args.namespace.clone(),
            context: args.context.clone(),
        },
    )
    .await
    {
        Ok(e) => e,
        Err(message) => {
            eprintln!("{message}");
            return 2;
        }
    };
    let selector = LabelSelector::from([(JOB_NAME_LABEL.to_owned(), args.job.clone())]);
    let mut pods = match executor.list(&selector).await {
        Ok(pods) => pods,
        Err(e) => {
            eprintln!("error: cannot list the pods of job {}: {e}", args.job);
            return 2;
        }
    };
    if pods.is_empty() {
        eprintln!(
            "error: no pods of job {:?} under {} (run it with `batch run` first, with the same --state-dir)",
            args.job,
            dir.display()
        );
        return 1;
    }
    if let Some(index) = args.index {
        pods.retain(|p| p.to_observed_pod(false).parsed_index() == Some(index));
        if pods.is_empty() {
            eprintln!("error: job {:?} has no pod with index {index}", args.job);
            return 1;
        }
    }
    pods.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
    let mut sections = Vec::new();
    for pod in &pods {
        // Init containers (listed last in observations) ran first.
        let mut containers: Vec<&str> = pod
            .containers
            .iter()
            .filter(|c| c.kind != batch_core::executor::ContainerKind::App)
            .chain(
                pod.containers
                    .iter()
                    .filter(|c| c.kind == batch_core::executor::ContainerKind::App),
            )
            .map(|c| c.name.as_str())
            .collect();
        if let Some(only) = &args.container {
            containers.retain(|c| c == only);
        }
        for container in containers {
            sections.push((pod.name.clone(), container.to_owned()));
        }
    }
    if sections.is_empty() {
        let only = args.container.as_deref().unwrap_or_default();
        eprintln!("error: job {:?} has no container named {only:?}", args.job);
        return 1;
    }
    let headers = sections.len() > 1;
    let mut stdout = std::io::stdout().lock();
    for (pod, container) in sections {
        match executor.logs_text(&pod, &container).await {
            Ok(text) => {
                if headers {
                    let _ = writeln!(stdout, "==> {pod}/{container} <==");
                }
                let _ = stdout.write_all(text.as_bytes());
                if !text.is_empty() && !text.ends_with('\n') {
                    let _ = writeln!(stdout);
                }
            }
            Err(e) => {
                eprintln!("error: logs of {pod}/{container}: {e}");
                return 2;
            }
        }
    }
    let _ = stdout.flush();
    0
}
