//! The cases: one `pub async fn` per behaviour.

use std::collections::{BTreeMap, BTreeSet};

use super::{Behaviour, Context, PodWatch, container, describe};
use crate::executor::{
    CONTROLLER_UID_LABEL, ContainerKind, ContainerObservation, ContainerRunState, ErrorKind,
    JOB_NAME_LABEL, LabelSelector, PodObservation, Terminated,
};
use crate::job::{COMPLETION_INDEX_ANNOTATION, PodPhase};
use crate::model::{
    ContainerRestartPolicy, EnvVar, EnvVarSource, ObjectFieldSelector, Quantity,
    ResourceRequirements, RestartPolicy,
};

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

/// The terminated state of a container, panicking with the observation when it has not ended.
fn terminated<'o>(obs: &'o PodObservation, name: &str) -> &'o Terminated {
    match container(obs, name).terminated() {
        Some(t) => t,
        None => panic!(
            "container {name} of pod {} has not terminated: {}",
            obs.name,
            describe(obs)
        ),
    }
}

fn assert_phase(cx: &Context, obs: &PodObservation, phase: PodPhase, why: &str) {
    assert_eq!(
        obs.phase,
        phase,
        "{}: pod {} should be {phase:?} ({why}); observed {}",
        cx.case(),
        obs.name,
        describe(obs)
    );
}

fn started(c: &ContainerObservation) -> bool {
    !matches!(c.state, ContainerRunState::Waiting { .. }) || c.restart_count > 0
}

fn find<'o>(obs: &'o PodObservation, name: &str) -> Option<&'o ContainerObservation> {
    obs.containers.iter().find(|c| c.name == name)
}

fn has_started(obs: &PodObservation, name: &str) -> bool {
    find(obs, name).is_some_and(started)
}

fn terminated_ok(obs: &PodObservation, name: &str) -> bool {
    find(obs, name)
        .and_then(ContainerObservation::terminated)
        .is_some_and(|t| t.exit_code == 0)
}

/// Asserts `first <= second` for two optional timestamps reported by the executor.
fn assert_not_before(
    cx: &Context,
    first: Option<crate::model::Timestamp>,
    second: Option<crate::model::Timestamp>,
    what: &str,
) {
    if let (Some(a), Some(b)) = (first, second) {
        assert!(a <= b, "{}: {what}: {a} is after {b}", cx.case());
    }
}

async fn list_names(cx: &Context, selector: &LabelSelector) -> BTreeSet<String> {
    match cx.executor.list(selector).await {
        Ok(pods) => pods.into_iter().map(|p| p.name).collect(),
        Err(e) => panic!("{}: list({selector:?}) failed: {e}", cx.case()),
    }
}

async fn list_one(cx: &Context, name: &str) -> Option<PodObservation> {
    match cx.executor.list(&cx.case_selector()).await {
        Ok(pods) => pods.into_iter().find(|p| p.name == name),
        Err(e) => panic!("{}: list failed: {e}", cx.case()),
    }
}

/// A container that exits 0 leaves the pod `Succeeded`, with exit code 0 and reason
/// `Completed`; `list` reports the same.
pub async fn exit_code_zero_succeeds_the_pod(cx: &Context) {
    let mut w = cx.watch().await;
    let pod = cx.pod("ok", vec![cx.container("main", Behaviour::Exit(0))]);
    let name = pod.name.clone();
    cx.start(pod).await;
    let obs = w.terminal(&name, None).await;
    assert_phase(cx, &obs, PodPhase::Succeeded, "its only container exited 0");
    assert_eq!(
        obs.containers.iter().filter(|c| c.name == "main").count(),
        1,
        "{}: container main should be reported once: {}",
        cx.case(),
        describe(&obs)
    );
    let c = container(&obs, "main");
    assert_eq!(c.kind, ContainerKind::App, "{}: kind of main", cx.case());
    let t = terminated(&obs, "main");
    if cx.capabilities().exit_codes {
        assert_eq!(t.exit_code, 0, "{}: exit code of main", cx.case());
    } else {
        cx.note("lacks exit_codes: not checking the exit code");
    }
    assert_eq!(t.reason, "Completed", "{}: reason of main", cx.case());
    assert!(
        obs.finished_at.is_some(),
        "{}: a terminal pod has finished_at: {obs:?}",
        cx.case()
    );
    assert_not_before(
        cx,
        obs.created_at,
        obs.finished_at,
        "created_at <= finished_at",
    );
    assert_not_before(cx, t.started_at, t.finished_at, "started_at <= finished_at");
    let listed = list_one(cx, &name).await;
    assert_eq!(
        listed.as_ref().map(|o| o.phase),
        Some(PodPhase::Succeeded),
        "{}: list should report the finished pod as Succeeded until it is deleted: {listed:?}",
        cx.case()
    );
    cx.cleanup().await;
}

/// A container that exits non-zero with `restartPolicy: Never` fails the pod; each
/// container's own exit code is reported (reason `Error` for the failed one).
pub async fn nonzero_exit_code_fails_the_pod_and_is_reported(cx: &Context) {
    let mut w = cx.watch().await;
    let pod = cx.pod(
        "fail",
        vec![
            cx.container("main", Behaviour::Exit(3)),
            cx.container("helper", Behaviour::Exit(0)),
        ],
    );
    let name = pod.name.clone();
    cx.start(pod).await;
    let obs = w.terminal(&name, None).await;
    assert_phase(
        cx,
        &obs,
        PodPhase::Failed,
        "container main exited 3 with restartPolicy Never",
    );
    let main = terminated(&obs, "main");
    let helper = terminated(&obs, "helper");
    if cx.capabilities().exit_codes {
        assert_eq!(main.exit_code, 3, "{}: exit code of main", cx.case());
        assert_eq!(helper.exit_code, 0, "{}: exit code of helper", cx.case());
    } else {
        cx.note("lacks exit_codes: not checking exit codes");
    }
    assert_eq!(main.reason, "Error", "{}: reason of main", cx.case());
    assert_eq!(
        helper.reason,
        "Completed",
        "{}: reason of helper",
        cx.case()
    );
    assert_eq!(
        main.signal,
        None,
        "{}: main exited, no signal: {}",
        cx.case(),
        describe(&obs)
    );
    assert_eq!(
        container(&obs, "main").restart_count,
        0,
        "{}: restartPolicy Never does not restart",
        cx.case()
    );
    cx.cleanup().await;
}

/// A container that kills itself with SIGKILL reports exit code 137 and signal 9; with
/// SIGTERM, 143 and 15. Needs `signals`.
pub async fn a_container_killed_by_a_signal_reports_128_plus_the_signal(cx: &Context) {
    let caps = cx.capabilities();
    if !cx.require("signals", caps.signals) {
        return;
    }
    let mut w = cx.watch().await;
    let kill = cx.pod("kill", vec![cx.container("main", Behaviour::KillSelf(9))]);
    let term = cx.pod("term", vec![cx.container("main", Behaviour::KillSelf(15))]);
    let names = [(kill.name.clone(), 9), (term.name.clone(), 15)];
    cx.start(kill).await;
    cx.start(term).await;
    for (name, signal) in names {
        let obs = w.terminal(&name, None).await;
        assert_phase(cx, &obs, PodPhase::Failed, "its container was killed");
        let t = terminated(&obs, "main");
        assert_eq!(
            (t.exit_code, t.signal),
            (128 + signal, Some(signal)),
            "{}: a container killed by signal {signal} reports exit code 128+{signal} and the \
             signal; observed {}",
            cx.case(),
            describe(&obs)
        );
        assert_ne!(t.reason, "OOMKilled", "{}: not an OOM kill", cx.case());
    }
    cx.cleanup().await;
}

/// The container sees `JOB_COMPLETION_INDEX`, plain variables, `$(VAR)` references to
/// earlier variables (and `$$(VAR)` escapes), and `fieldRef` variables (the completion-index
/// annotation, the pod name), as the kubelet provides them. Needs `logs`.
pub async fn env_and_completion_index_reach_the_container(cx: &Context) {
    if !cx.require("logs", cx.capabilities().logs) {
        return;
    }
    let vars = [
        "JOB_COMPLETION_INDEX",
        "PLAIN",
        "DERIVED",
        "ESCAPED",
        "FROM_ANNOTATION",
        "POD_NAME",
    ];
    let mut c = cx.container(
        "main",
        Behaviour::PrintEnv(vars.iter().map(|v| (*v).to_owned()).collect()),
    );
    let value = |name: &str, v: &str| EnvVar {
        name: name.to_owned(),
        value: Some(v.to_owned()),
        ..EnvVar::default()
    };
    let field = |name: &str, path: &str| EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    // As `PodRequest::new` builds it: the machine's variable first, then the template's.
    c.env = vec![
        value("JOB_COMPLETION_INDEX", "2"),
        value("PLAIN", "plain value with spaces"),
        value("DERIVED", "index-$(JOB_COMPLETION_INDEX)"),
        value("ESCAPED", "$$(JOB_COMPLETION_INDEX)"),
        field(
            "FROM_ANNOTATION",
            &format!("metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"),
        ),
        field("POD_NAME", "metadata.name"),
    ];
    let mut pod = cx.pod("env", vec![c]);
    pod.index = Some(2);
    pod.annotations
        .insert(COMPLETION_INDEX_ANNOTATION.to_owned(), "2".to_owned());
    pod.labels
        .insert(COMPLETION_INDEX_ANNOTATION.to_owned(), "2".to_owned());
    let name = pod.name.clone();
    let mut w = cx.watch().await;
    cx.start(pod).await;
    let obs = w.terminal(&name, None).await;
    let logs = cx.logs(&name, "main").await;
    assert_phase(
        cx,
        &obs,
        PodPhase::Succeeded,
        &format!("it only prints its environment; logs: {logs:?}"),
    );
    let lines: BTreeSet<&str> = logs.lines().collect();
    for expected in [
        "JOB_COMPLETION_INDEX=2".to_owned(),
        "PLAIN=plain value with spaces".to_owned(),
        "DERIVED=index-2".to_owned(),
        "ESCAPED=$(JOB_COMPLETION_INDEX)".to_owned(),
        "FROM_ANNOTATION=2".to_owned(),
        format!("POD_NAME={name}"),
    ] {
        assert!(
            lines.contains(expected.as_str()),
            "{}: the container should see {expected:?}; it printed:\n{logs}",
            cx.case()
        );
    }
    cx.cleanup().await;
}

/// The container sees the pod's `hostname` (Indexed Jobs set `<job>-<index>`). Needs
/// `hostname` and `logs`.
pub async fn hostname_is_set(cx: &Context) {
    let caps = cx.capabilities();
    if !cx.require("hostname", caps.hostname) || !cx.require("logs", caps.logs) {
        return;
    }
    let mut pod = cx.pod("host", vec![cx.container("main", Behaviour::PrintHostname)]);
    let hostname = format!("{}-3", cx.prefix);
    pod.hostname = Some(hostname.clone());
    pod.spec.hostname = Some(hostname.clone());
    let name = pod.name.clone();
    let mut w = cx.watch().await;
    cx.start(pod).await;
    let obs = w.terminal(&name, None).await;
    let logs = cx.logs(&name, "main").await;
    assert_phase(cx, &obs, PodPhase::Succeeded, "it only prints its hostname");
    assert_eq!(
        logs.trim(),
        hostname,
        "{}: the container should see the pod's hostname",
        cx.case()
    );
    cx.cleanup().await;
}

/// Init containers run one at a time, in order, each to success before the next starts,
/// and all before the app containers; the pod stays `Pending` until they are done. The
/// observation lists app containers first, then init containers. Needs `init_containers`.
pub async fn init_containers_run_in_order_before_app_containers(cx: &Context) {
    if !cx.require("init_containers", cx.capabilities().init_containers) {
        return;
    }
    let mut pod = cx.pod(
        "init",
        vec![cx.container(
            "main",
            Behaviour::SleepThenExit {
                seconds: 1,
                code: 0,
            },
        )],
    );
    pod.spec.init_containers = vec![
        cx.container(
            "init-a",
            Behaviour::SleepThenExit {
                seconds: 1,
                code: 0,
            },
        ),
        cx.container("init-b", Behaviour::Exit(0)),
    ];
    let name = pod.name.clone();
    let mut w = cx.watch().await;
    cx.start(pod).await;
    let obs = w.terminal(&name, None).await;
    assert_phase(cx, &obs, PodPhase::Succeeded, "every container exited 0");
    let order: Vec<(&str, ContainerKind)> = obs
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.kind))
        .collect();
    assert_eq!(
        order,
        [
            ("main", ContainerKind::App),
            ("init-a", ContainerKind::Init),
            ("init-b", ContainerKind::Init)
        ],
        "{}: app containers first, then init containers, in template order",
        cx.case()
    );
    for h in w.history(&name) {
        let inits_done = terminated_ok(h, "init-a") && terminated_ok(h, "init-b");
        if has_started(h, "init-b") {
            assert!(
                terminated_ok(h, "init-a"),
                "{}: init-b started before init-a succeeded: {}",
                cx.case(),
                describe(h)
            );
        }
        if has_started(h, "main") {
            assert!(
                inits_done,
                "{}: main started before the init containers succeeded: {}",
                cx.case(),
                describe(h)
            );
        }
        if !inits_done && !h.phase.is_terminal() {
            assert_eq!(
                h.phase,
                PodPhase::Pending,
                "{}: a pod is Pending while its init containers run: {}",
                cx.case(),
                describe(h)
            );
        }
    }
    let (a, b, m) = (
        terminated(&obs, "init-a"),
        terminated(&obs, "init-b"),
        terminated(&obs, "main"),
    );
    assert_not_before(cx, a.finished_at, b.started_at, "init-a ends before init-b");
    assert_not_before(cx, b.finished_at, m.started_at, "init-b ends before main");
    cx.cleanup().await;
}

/// With `restartPolicy: Never`, an init container that fails fails the pod; later init
/// containers and the app containers never start. Needs `init_containers`.
pub async fn failed_init_container_fails_the_pod_with_restart_never(cx: &Context) {
    if !cx.require("init_containers", cx.capabilities().init_containers) {
        return;
    }
    let mut pod = cx.pod("initfail", vec![cx.container("main", Behaviour::Exit(0))]);
    pod.spec.init_containers = vec![
        cx.container("init-a", Behaviour::Exit(1)),
        cx.container("init-b", Behaviour::Exit(0)),
    ];
    let name = pod.name.clone();
    let mut w = cx.watch().await;
    cx.start(pod).await;
    let obs = w.terminal(&name, None).await;
    assert_phase(cx, &obs, PodPhase::Failed, "init container init-a exited 1");
    let a = terminated(&obs, "init-a");
    if cx.capabilities().exit_codes {
        assert_eq!(a.exit_code, 1, "{}: exit code of init-a", cx.case());
    }
    assert_eq!(a.reason, "Error", "{}: reason of init-a", cx.case());
    for h in w.history(&name) {
        for never in ["init-b", "main"] {
            if let Some(c) = find(h, never) {
                assert!(
                    matches!(c.state, ContainerRunState::Waiting { .. }),
                    "{}: container {never} must never run after init-a failed (Kubernetes \
                     leaves it Waiting): {}",
                    cx.case(),
                    describe(h)
                );
            }
        }
    }
    cx.cleanup().await;
}

/// A native sidecar (init container with `restartPolicy: Always`) is running before the
/// app container starts, keeps running beside it, and is stopped once the app container
/// has finished; the pod then succeeds whatever the sidecar's exit code. Needs
/// `sidecar_containers`.
pub async fn sidecar_starts_first_and_is_stopped_after_app_containers_finish(cx: &Context) {
    if !cx.require("sidecar_containers", cx.capabilities().sidecar_containers) {
        return;
    }
    let mut pod = cx.pod(
        "sidecar",
        vec![cx.container(
            "main",
            Behaviour::SleepThenExit {
                seconds: 1,
                code: 0,
            },
        )],
    );
    let mut sidecar = cx.container("sidecar", Behaviour::RunUntilTerminated { code: 0 });
    sidecar.restart_policy = Some(ContainerRestartPolicy::Always);
    pod.spec.init_containers = vec![sidecar];
    pod.spec.termination_grace_period_seconds = Some(5);
    let name = pod.name.clone();
    let mut w = cx.watch().await;
    cx.start(pod).await;
    // The sidecar stops on SIGTERM; if an executor only kills it after the grace period,
    // advancing the clock gets there too.
    let obs = w.terminal(&name, Some(secs(1))).await;
    assert_phase(
        cx,
        &obs,
        PodPhase::Succeeded,
        "the app container exited 0; a sidecar's exit does not count",
    );
    assert_eq!(
        container(&obs, "sidecar").kind,
        ContainerKind::Sidecar,
        "{}: kind of the sidecar",
        cx.case()
    );
    let s = terminated(&obs, "sidecar");
    let m = terminated(&obs, "main");
    if cx.capabilities().exit_codes {
        assert_eq!(m.exit_code, 0, "{}: exit code of main", cx.case());
    }
    let mut saw_both_running = false;
    for h in w.history(&name) {
        if has_started(h, "main") {
            assert!(
                has_started(h, "sidecar"),
                "{}: main started before the sidecar: {}",
                cx.case(),
                describe(h)
            );
        }
        let running = |n: &str| {
            find(h, n).is_some_and(|c| matches!(c.state, ContainerRunState::Running { .. }))
        };
        if running("main") {
            assert_eq!(
                h.phase,
                PodPhase::Running,
                "{}: a pod whose app container runs is Running: {}",
                cx.case(),
                describe(h)
            );
            saw_both_running |= running("sidecar");
        }
    }
    assert!(
        saw_both_running,
        "{}: never observed the sidecar running beside main; history:\n{}",
        cx.case(),
        w.history(&name)
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_not_before(cx, s.started_at, m.started_at, "sidecar starts before main");
    assert_not_before(cx, m.finished_at, s.finished_at, "sidecar stops after main");
    cx.cleanup().await;
}

/// With `restartPolicy: OnFailure`, a failing container is restarted in the same pod after
/// the back-off (the clock is advanced past it); `restart_count` counts the restarts,
/// `last_state` holds the previous run's exit, and the pod never becomes terminal by itself
/// (it is `Running` between runs). Needs `restart_in_place`.
pub async fn on_failure_restarts_the_container_in_place_and_counts_restarts(cx: &Context) {
    if !cx.require("restart_in_place", cx.capabilities().restart_in_place) {
        return;
    }
    let mut pod = cx.pod("restart", vec![cx.container("main", Behaviour::Exit(1))]);
    pod.spec.restart_policy = RestartPolicy::OnFailure;
    let name = pod.name.clone();
    let mut w = cx.watch().await;
    cx.start(pod).await;
    // Back-off is 10 s, 20 s, …: advance in 5 s steps while waiting.
    w.until(
        &format!("container main of pod {name} to be restarted twice"),
        Some(secs(5)),
        |w| {
            w.latest(&name)
                .and_then(|o| find(o, "main"))
                .is_some_and(|c| c.restart_count >= 2)
        },
    )
    .await;
    let obs = w.latest(&name).cloned().unwrap_or_default();
    let c = container(&obs, "main");
    let last = c.last_state.as_ref().unwrap_or_else(|| {
        panic!(
            "{}: a restarted container reports its previous run in last_state: {c:?}",
            cx.case()
        )
    });
    if cx.capabilities().exit_codes {
        assert_eq!(
            last.exit_code,
            1,
            "{}: exit code of the last run",
            cx.case()
        );
    }
    assert_eq!(
        last.reason,
        "Error",
        "{}: reason of the last run",
        cx.case()
    );
    let mut previous = 0;
    for h in w.history(&name) {
        assert!(
            !h.phase.is_terminal(),
            "{}: an OnFailure pod restarts its container instead of ending: {}",
            cx.case(),
            describe(h)
        );
        let Some(c) = find(h, "main") else { continue };
        assert!(
            c.restart_count >= previous,
            "{}: restart_count went down: {}",
            cx.case(),
            describe(h)
        );
        previous = c.restart_count;
        if c.restart_count > 0 {
            assert_eq!(
                h.phase,
                PodPhase::Running,
                "{}: an OnFailure pod between restarts is Running: {}",
                cx.case(),
                describe(h)
            );
        }
    }
    let names = list_names(cx, &cx.case_selector()).await;
    assert_eq!(
        names,
        BTreeSet::from([name.clone()]),
        "{}: restarts happen in place, no new pod",
        cx.case()
    );
    cx.cleanup().await;
}

/// Starts `behaviour` in a pod with `grace` seconds of termination grace, waits until it is
/// ready and returns the watch and the pod's name.
async fn start_ready<'c>(
    cx: &'c Context,
    suffix: &str,
    behaviour: Behaviour,
    grace: Option<i64>,
) -> (PodWatch<'c>, String) {
    let mut pod = cx.pod(suffix, vec![cx.container("main", behaviour)]);
    pod.spec.termination_grace_period_seconds = grace;
    let name = pod.name.clone();
    let mut w = cx.watch().await;
    cx.start(pod).await;
    w.until(&format!("pod {name} to be Running"), None, |w| {
        w.latest(&name)
            .is_some_and(|o| o.phase == PodPhase::Running || o.phase.is_terminal() || o.deleting)
    })
    .await;
    let obs = w.latest(&name).cloned().unwrap_or_default();
    assert_phase(
        cx,
        &obs,
        PodPhase::Running,
        "its container runs until stopped",
    );
    cx.wait_until_ready(&name, "main").await;
    (w, name)
}

/// `delete` with no grace period uses the pod's `terminationGracePeriodSeconds`: the
/// container, which ignores SIGTERM, keeps running (the pod is observed `deleting`) until
/// the grace period has passed, then is killed (exit 137, signal 9); then the pod is gone.
/// Needs `graceful_stop`.
pub async fn delete_sends_sigterm_then_kills_after_grace_period(cx: &Context) {
    if !cx.require("graceful_stop", cx.capabilities().graceful_stop) {
        return;
    }
    let grace = 3;
    let (mut w, name) = start_ready(cx, "grace", Behaviour::IgnoreTerm, Some(grace)).await;
    let executor = cx.executor.clone();
    let pod = name.clone();
    let delete = tokio::spawn(async move { executor.delete(&pod, None).await });
    w.until(&format!("pod {name} to be observed deleting"), None, |w| {
        w.latest(&name).is_some_and(|o| o.deleting) || w.is_gone(&name)
    })
    .await;
    let deleting = w.latest(&name).cloned().unwrap_or_default();
    if cx.clock.is_manual() {
        // No time has passed yet: SIGTERM is ignored, so the container still runs.
        assert!(
            !deleting.phase.is_terminal()
                && matches!(
                    container(&deleting, "main").state,
                    ContainerRunState::Running { .. }
                ),
            "{}: a container that ignores SIGTERM keeps running during the grace period; \
             observed {}",
            cx.case(),
            describe(&deleting)
        );
    }
    let obs = w.terminal(&name, Some(secs(1))).await;
    assert_phase(cx, &obs, PodPhase::Failed, "its container was killed");
    assert!(
        obs.deleting,
        "{}: a pod stopped by delete stays marked deleting: {}",
        cx.case(),
        describe(&obs)
    );
    let t = terminated(&obs, "main");
    if cx.capabilities().exit_codes {
        assert_eq!(
            t.exit_code,
            137,
            "{}: killed after the grace period: exit 137; observed {}",
            cx.case(),
            describe(&obs)
        );
    }
    if cx.capabilities().signals {
        assert_eq!(t.signal, Some(9), "{}: killed by SIGKILL", cx.case());
    }
    if let (Some(asked), Some(ended)) = (obs.deletion_time, t.finished_at) {
        assert!(
            ended >= asked + secs(grace - 1),
            "{}: the kill came before the {grace} s grace period had passed (deletion at \
             {asked}, container ended at {ended})",
            cx.case()
        );
    }
    match delete.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{}: delete({name}) failed: {e}", cx.case()),
        Err(e) => panic!("{}: delete task failed: {e}", cx.case()),
    }
    w.gone(&name, Some(secs(1))).await;
    assert!(
        list_one(cx, &name).await.is_none(),
        "{}: a deleted pod is no longer listed",
        cx.case()
    );
    cx.cleanup().await;
}

/// A container that exits on SIGTERM ends as soon as `delete` asks it to, well inside a long
/// grace period: its own exit code (143) is reported, not a kill (137). Needs
/// `graceful_stop`.
pub async fn delete_of_a_process_that_exits_on_sigterm_is_quick(cx: &Context) {
    if !cx.require("graceful_stop", cx.capabilities().graceful_stop) {
        return;
    }
    let (mut w, name) = start_ready(
        cx,
        "quick",
        Behaviour::RunUntilTerminated { code: 143 },
        None,
    )
    .await;
    if let Err(e) = cx.executor.delete(&name, Some(secs(30))).await {
        panic!("{}: delete({name}) failed: {e}", cx.case());
    }
    // The clock is not advanced: only SIGTERM can end this pod.
    let obs = w.terminal(&name, None).await;
    assert_phase(cx, &obs, PodPhase::Failed, "its container exited 143");
    let t = terminated(&obs, "main");
    if cx.capabilities().exit_codes {
        assert_eq!(
            t.exit_code,
            143,
            "{}: the container's own exit on SIGTERM (143) should be reported, not a kill \
             after the grace period (137); observed {}",
            cx.case(),
            describe(&obs)
        );
    }
    w.gone(&name, None).await;
    cx.cleanup().await;
}

/// A pod running longer than its `activeDeadlineSeconds` is stopped and fails with reason
/// `DeadlineExceeded`. Needs `pod_active_deadline`.
pub async fn pod_active_deadline_fails_the_pod(cx: &Context) {
    if !cx.require("pod_active_deadline", cx.capabilities().pod_active_deadline) {
        return;
    }
    let mut pod = cx.pod(
        "deadline",
        vec![cx.container("main", Behaviour::RunUntilTerminated { code: 143 })],
    );
    pod.spec.active_deadline_seconds = Some(2);
    pod.spec.termination_grace_period_seconds = Some(5);
    let name = pod.name.clone();
    let mut w = cx.watch().await;
    cx.start(pod).await;
    w.until(&format!("pod {name} to be Running"), None, |w| {
        w.latest(&name)
            .is_some_and(|o| o.phase == PodPhase::Running || o.phase.is_terminal())
    })
    .await;
    cx.wait_until_ready(&name, "main").await;
    let obs = w.terminal(&name, Some(secs(1))).await;
    assert_phase(
        cx,
        &obs,
        PodPhase::Failed,
        "it ran past activeDeadlineSeconds",
    );
    assert_eq!(
        obs.reason,
        "DeadlineExceeded",
        "{}: pod reason; observed {}",
        cx.case(),
        describe(&obs)
    );
    assert!(
        container(&obs, "main").terminated().is_some(),
        "{}: the container was stopped: {}",
        cx.case(),
        describe(&obs)
    );
    cx.cleanup().await;
}

/// `logs` returns what each container wrote to stdout and stderr, per container, and is kept
/// after the pod ends; the logs of an unknown pod are `NotFound`. Needs `logs`.
pub async fn logs_hold_stdout_and_stderr(cx: &Context) {
    if !cx.require("logs", cx.capabilities().logs) {
        return;
    }
    let print = |out: &str, err: &str| Behaviour::Print {
        stdout: out.to_owned(),
        stderr: err.to_owned(),
    };
    let pod = cx.pod(
        "logs",
        vec![
            cx.container("main", print("hello from stdout", "hello from stderr")),
            cx.container("other", print("other stdout", "other stderr")),
        ],
    );
    let name = pod.name.clone();
    let mut w = cx.watch().await;
    cx.start(pod).await;
    let obs = w.terminal(&name, None).await;
    assert_phase(cx, &obs, PodPhase::Succeeded, "its containers only print");
    let main = cx.logs(&name, "main").await;
    let other = cx.logs(&name, "other").await;
    for (logs, has, lacks) in [
        (
            &main,
            ["hello from stdout", "hello from stderr"],
            "other stdout",
        ),
        (
            &other,
            ["other stdout", "other stderr"],
            "hello from stdout",
        ),
    ] {
        for line in has {
            assert!(
                logs.lines().any(|l| l == line),
                "{}: logs should hold the line {line:?}; got {logs:?}",
                cx.case()
            );
        }
        assert!(
            !logs.contains(lacks),
            "{}: logs are per container, {lacks:?} is another container's; got {logs:?}",
            cx.case()
        );
    }
    let unknown = format!("{}-unknown", cx.prefix);
    match cx.executor.logs(&unknown, "main").await {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        other => panic!(
            "{}: logs of an unknown pod should be NotFound, got {other:?}",
            cx.case()
        ),
    }
    cx.cleanup().await;
}

/// `list` returns exactly the pods whose labels match (by controller UID, by job name),
/// finished or not, with their labels and annotations as requested; deleted pods are no
/// longer listed.
pub async fn list_returns_pods_by_label_for_adoption(cx: &Context) {
    let mut w = cx.watch().await;
    let mut a_names = BTreeSet::new();
    for i in 0..3 {
        let mut pod = cx.pod_of_job(
            &format!("a{i}"),
            "a",
            vec![cx.container("main", Behaviour::Exit(0))],
        );
        pod.annotations
            .insert("conformance.batch/note".to_owned(), format!("pod {i}"));
        a_names.insert(pod.name.clone());
        cx.start(pod).await;
    }
    let b = cx.pod_of_job(
        "b0",
        "b",
        vec![cx.container("main", Behaviour::RunUntilTerminated { code: 0 })],
    );
    let b_name = b.name.clone();
    let b_labels = b.labels.clone();
    cx.start(b).await;
    for n in &a_names {
        w.terminal(n, None).await;
    }
    let a_uid = format!("{}a-uid", cx.prefix);
    let by_uid = LabelSelector::from([(CONTROLLER_UID_LABEL.to_owned(), a_uid.clone())]);
    let listed = match cx.executor.list(&by_uid).await {
        Ok(p) => p,
        Err(e) => panic!("{}: list failed: {e}", cx.case()),
    };
    let listed_names: BTreeSet<String> = listed.iter().map(|p| p.name.clone()).collect();
    assert_eq!(
        listed_names,
        a_names,
        "{}: list by {CONTROLLER_UID_LABEL}={a_uid} returns exactly job a's pods",
        cx.case()
    );
    for p in &listed {
        assert_eq!(
            p.labels.get(CONTROLLER_UID_LABEL),
            Some(&a_uid),
            "{}: labels as requested: {:?}",
            cx.case(),
            p.labels
        );
        assert!(
            p.annotations
                .get("conformance.batch/note")
                .is_some_and(|v| v.starts_with("pod ")),
            "{}: annotations as requested: {:?}",
            cx.case(),
            p.annotations
        );
        assert_eq!(
            p.phase,
            PodPhase::Succeeded,
            "{}: finished pods are listed with their outcome: {}",
            cx.case(),
            describe(p)
        );
    }
    let by_job =
        LabelSelector::from([(JOB_NAME_LABEL.to_owned(), b_labels[JOB_NAME_LABEL].clone())]);
    assert_eq!(
        list_names(cx, &by_job).await,
        BTreeSet::from([b_name.clone()]),
        "{}: list by {JOB_NAME_LABEL} returns exactly job b's pod",
        cx.case()
    );
    let all = list_names(cx, &LabelSelector::new()).await;
    for n in a_names.iter().chain([&b_name]) {
        assert!(
            all.contains(n),
            "{}: the empty selector lists every pod; {n} is missing from {all:?}",
            cx.case()
        );
    }
    let nothing = LabelSelector::from([(
        CONTROLLER_UID_LABEL.to_owned(),
        format!("{}-no-such-uid", cx.prefix),
    )]);
    assert!(
        list_names(cx, &nothing).await.is_empty(),
        "{}: a selector that matches nothing lists nothing",
        cx.case()
    );
    for n in &a_names {
        if let Err(e) = cx.executor.delete(n, None).await {
            panic!("{}: delete({n}) failed: {e}", cx.case());
        }
    }
    for n in &a_names {
        w.gone(n, None).await;
    }
    assert!(
        list_names(cx, &by_uid).await.is_empty(),
        "{}: deleted pods are no longer listed",
        cx.case()
    );
    cx.cleanup().await;
}

fn phase_rank(p: PodPhase) -> u8 {
    match p {
        PodPhase::Pending => 0,
        PodPhase::Running => 1,
        _ => 2,
    }
}

/// A watch delivers every change of a pod it selects, in order: phases never go back, the
/// pod is seen `Running`, the last observation is the terminal one, and after `delete` the
/// pod is reported `Deleted`. A watch whose selector does not match sees none of it.
pub async fn watch_reports_every_transition_to_terminal(cx: &Context) {
    let mut w = cx.watch().await;
    let mut other = cx
        .watch_selector(LabelSelector::from([(
            CONTROLLER_UID_LABEL.to_owned(),
            format!("{}-other-uid", cx.prefix),
        )]))
        .await;
    let pod = cx.pod(
        "watch",
        vec![cx.container(
            "main",
            Behaviour::SleepThenExit {
                seconds: 1,
                code: 0,
            },
        )],
    );
    let name = pod.name.clone();
    cx.start(pod).await;
    let obs = w.terminal(&name, None).await;
    assert_phase(cx, &obs, PodPhase::Succeeded, "its container exited 0");
    let history = w.history(&name).to_vec();
    let summary = history.iter().map(describe).collect::<Vec<_>>().join("\n");
    let mut rank = 0;
    for h in &history {
        assert!(
            phase_rank(h.phase) >= rank,
            "{}: phases must not go back; history:\n{summary}",
            cx.case()
        );
        rank = phase_rank(h.phase);
    }
    assert!(
        history.iter().any(|h| h.phase == PodPhase::Running
            && matches!(
                find(h, "main").map(|c| &c.state),
                Some(ContainerRunState::Running { .. })
            )),
        "{}: the watch should show the pod Running with main running (it runs for a second); \
         history:\n{summary}",
        cx.case()
    );
    assert!(
        history.first().is_some_and(|h| !h.phase.is_terminal()),
        "{}: the first observation should come before the end; history:\n{summary}",
        cx.case()
    );
    if let Err(e) = cx.executor.delete(&name, None).await {
        panic!("{}: delete({name}) failed: {e}", cx.case());
    }
    w.gone(&name, None).await;
    w.drain().await;
    assert!(
        w.is_gone(&name) && w.latest(&name).is_none(),
        "{}: nothing may follow Deleted: {}",
        cx.case(),
        w.describe_all()
    );
    other.drain().await;
    assert!(
        other.latest(&name).is_none() && !other.is_gone(&name),
        "{}: a watch with a non-matching selector saw the pod: {}",
        cx.case(),
        other.describe_all()
    );
    cx.cleanup().await;
}

/// A container whose program does not exist makes `start` succeed and the pod fail: the
/// container is terminated with a non-zero exit code and reason `StartError` (or Docker's
/// `ContainerCannotRun`).
pub async fn start_failure_is_a_failed_pod_not_an_error(cx: &Context) {
    let pod = cx.pod(
        "nobin",
        vec![cx.container("main", Behaviour::MissingBinary)],
    );
    let name = pod.name.clone();
    let mut w = cx.watch().await;
    cx.start(pod).await;
    let obs = w.terminal(&name, None).await;
    assert_phase(cx, &obs, PodPhase::Failed, "its container cannot start");
    let t = terminated(&obs, "main");
    if cx.capabilities().exit_codes {
        assert_ne!(
            t.exit_code,
            0,
            "{}: a container that cannot start has a non-zero exit code: {}",
            cx.case(),
            describe(&obs)
        );
    }
    assert!(
        ["StartError", "ContainerCannotRun"].contains(&t.reason.as_str()),
        "{}: reason should be StartError (or ContainerCannotRun); observed {}",
        cx.case(),
        describe(&obs)
    );
    cx.cleanup().await;
}

/// Starting a pod under a name the executor already holds (running or finished) is
/// `AlreadyExists`, and leaves the existing pod alone.
pub async fn starting_an_existing_name_is_already_exists(cx: &Context) {
    let mut w = cx.watch().await;
    let running = cx.pod(
        "dup",
        vec![cx.container("main", Behaviour::RunUntilTerminated { code: 0 })],
    );
    let finished = cx.pod("dupdone", vec![cx.container("main", Behaviour::Exit(0))]);
    let (running_name, finished_name) = (running.name.clone(), finished.name.clone());
    cx.start(running.clone()).await;
    cx.start(finished.clone()).await;
    w.terminal(&finished_name, None).await;
    w.until(&format!("pod {running_name} to be Running"), None, |w| {
        w.latest(&running_name)
            .is_some_and(|o| o.phase == PodPhase::Running)
    })
    .await;
    let mut other_spec = running.clone();
    other_spec.spec.containers = vec![cx.container("main", Behaviour::Exit(7))];
    for (what, pod) in [
        ("a running pod", running),
        ("a running pod, with another spec", other_spec),
        ("a finished pod", finished),
    ] {
        let name = pod.name.clone();
        match cx.executor.start(pod).await {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            other => panic!(
                "{}: starting {name} again ({what}) should be AlreadyExists, got {other:?}",
                cx.case()
            ),
        }
    }
    w.drain().await;
    let obs = w.latest(&running_name).cloned().unwrap_or_default();
    assert_eq!(
        (obs.phase, obs.deleting),
        (PodPhase::Running, false),
        "{}: the existing pod is left alone: {}",
        cx.case(),
        describe(&obs)
    );
    cx.cleanup().await;
}

/// Deleting a name the executor does not hold is `NotFound`.
pub async fn deleting_an_unknown_pod_is_not_found(cx: &Context) {
    let name = format!("{}-never-started", cx.prefix);
    match cx.executor.delete(&name, None).await {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        other => panic!(
            "{}: deleting an unknown pod should be NotFound, got {other:?}",
            cx.case()
        ),
    }
}

/// Deleting a finished pod removes it at once: it is reported `Deleted`, no longer listed,
/// its logs are gone, and deleting it again is `NotFound`.
pub async fn deleting_a_finished_pod_removes_it_and_its_logs(cx: &Context) {
    let pod = cx.pod(
        "done",
        vec![cx.container(
            "main",
            Behaviour::Print {
                stdout: "some output".to_owned(),
                stderr: String::new(),
            },
        )],
    );
    let name = pod.name.clone();
    let mut w = cx.watch().await;
    cx.start(pod).await;
    w.terminal(&name, None).await;
    if let Err(e) = cx.executor.delete(&name, None).await {
        panic!(
            "{}: delete({name}) of a finished pod failed: {e}",
            cx.case()
        );
    }
    // A finished pod has nothing to stop: no time needs to pass.
    w.gone(&name, None).await;
    assert!(
        list_one(cx, &name).await.is_none(),
        "{}: a deleted pod is no longer listed",
        cx.case()
    );
    if cx.capabilities().logs {
        match cx.executor.logs(&name, "main").await {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            other => panic!(
                "{}: the logs of a deleted pod should be NotFound, got {other:?}",
                cx.case()
            ),
        }
    }
    match cx.executor.delete(&name, None).await {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        other => panic!(
            "{}: deleting a deleted pod again should be NotFound, got {other:?}",
            cx.case()
        ),
    }
}

/// Many pods started at once (concurrently; [`Context::many_pods`], 100 by default) all
/// run, all succeed, are all observed terminal, listed, and deleted.
pub async fn many_pods_at_once(cx: &Context) {
    let n = cx.many_pods;
    let mut w = cx.watch().await;
    let pods: Vec<_> = (0..n)
        .map(|i| {
            cx.pod(
                &format!("p{i}"),
                vec![cx.container(
                    "main",
                    Behaviour::Print {
                        stdout: format!("pod number {i}"),
                        stderr: String::new(),
                    },
                )],
            )
        })
        .collect();
    let names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
    futures_util::future::join_all(pods.into_iter().map(|p| cx.start(p))).await;
    w.until(
        &format!("all {n} pods to reach a terminal phase"),
        None,
        |w| {
            names
                .iter()
                .all(|n| w.latest(n).is_some_and(|o| o.phase.is_terminal()))
        },
    )
    .await;
    let failed: Vec<String> = names
        .iter()
        .filter_map(|n| w.latest(n))
        .filter(|o| o.phase != PodPhase::Succeeded)
        .map(describe)
        .collect();
    assert!(
        failed.is_empty(),
        "{}: every pod should succeed; these did not:\n{}",
        cx.case(),
        failed.join("\n")
    );
    if cx.capabilities().logs {
        for (i, name) in names.iter().enumerate() {
            let logs = cx.logs(name, "main").await;
            assert_eq!(
                logs.trim(),
                format!("pod number {i}"),
                "{}: logs of {name}",
                cx.case()
            );
        }
    }
    let listed = list_names(cx, &cx.case_selector()).await;
    assert_eq!(
        listed,
        names.iter().cloned().collect::<BTreeSet<_>>(),
        "{}: list returns every pod",
        cx.case()
    );
    let deletes = names.iter().map(|name| async move {
        if let Err(e) = cx.executor.delete(name, None).await {
            panic!("{}: delete({name}) failed: {e}", cx.case());
        }
    });
    futures_util::future::join_all(deletes).await;
    w.until(&format!("all {n} pods to be reported deleted"), None, |w| {
        names.iter().all(|n| w.is_gone(n))
    })
    .await;
    cx.cleanup().await;
}

/// A container that allocates more memory than its limit is killed and reported `OOMKilled`
/// (exit 137); the pod fails. Needs `memory_limit`.
pub async fn memory_limit_is_enforced_and_reported_as_oomkilled(cx: &Context) {
    if !cx.require("memory_limit", cx.capabilities().memory_limit) {
        return;
    }
    let mut c = cx.container("main", Behaviour::AllocateMemory(512 * 1024 * 1024));
    c.resources = Some(ResourceRequirements {
        limits: BTreeMap::from([("memory".to_owned(), Quantity("64Mi".to_owned()))]),
        ..ResourceRequirements::default()
    });
    let pod = cx.pod("oom", vec![c]);
    let name = pod.name.clone();
    let mut w = cx.watch().await;
    cx.start(pod).await;
    let obs = w.terminal(&name, None).await;
    assert_phase(
        cx,
        &obs,
        PodPhase::Failed,
        "its container exceeded its memory limit",
    );
    let t = terminated(&obs, "main");
    assert_eq!(
        t.reason,
        "OOMKilled",
        "{}: reason; observed {}",
        cx.case(),
        describe(&obs)
    );
    if cx.capabilities().exit_codes {
        assert_eq!(t.exit_code, 137, "{}: exit code of an OOM kill", cx.case());
    }
    cx.cleanup().await;
}
