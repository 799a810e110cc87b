//! Process results → [`PodObservation`]: container terminations, the pod phase (derived as
//! the kubelet's `getPhase` does), conditions and the restart backoff.
//!
//! Pure: times are parameters.

use batch_core::executor::{
    ContainerKind, ContainerObservation, ContainerRunState, PodObservation, Terminated,
};
use batch_core::job::{PodCondition, PodPhase};
use batch_core::model::{ConditionStatus, RestartPolicy, Timestamp};

use crate::translate::{PodPlan, StartProblem};

/// Pod reason when `activeDeadlineSeconds` passed.
pub(crate) const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
/// Pod message when `activeDeadlineSeconds` passed (the kubelet's text).
pub(crate) const DEADLINE_MESSAGE: &str =
    "Pod was active on the node longer than the specified deadline";
/// Pod reason when its shim was told to stop it without deleting it (SIGTERM without a stop
/// request), as the kubelet's for pods stopped by a node shutdown.
pub(crate) const SHUT_DOWN: &str = "Terminated";
/// Pod message with [`SHUT_DOWN`].
pub(crate) const SHUT_DOWN_MESSAGE: &str =
    "the pod's shim received SIGTERM without a deletion and stopped the pod";
/// Pod reason when the executor that ran a pod exited before recording its outcome.
pub(crate) const EXECUTOR_LOST: &str = "ExecutorLost";

/// The kubelet's initial container restart backoff.
pub(crate) const BACKOFF_INITIAL: chrono::Duration = chrono::Duration::seconds(10);
/// The kubelet's maximum container restart backoff.
pub(crate) const BACKOFF_MAX: chrono::Duration = chrono::Duration::seconds(300);

/// The delay before the next restart of a container, given the previous delay (none before
/// the first restart) and how long the last run lasted: 10 s, doubling, at most 5 min; a
/// run of at least 10 min (twice the maximum) resets it, as in the kubelet.
pub(crate) fn next_backoff(
    previous: Option<chrono::Duration>,
    ran_for: chrono::Duration,
) -> chrono::Duration {
    match previous {
        Some(p) if ran_for < BACKOFF_MAX * 2 => (p * 2).min(BACKOFF_MAX),
        _ => BACKOFF_INITIAL,
    }
}

/// The observation of a pod just accepted: every container waiting.
pub(crate) fn initial(
    pod: &batch_core::executor::PodRequest,
    plan: &PodPlan,
    now: Timestamp,
) -> PodObservation {
    let initializing = !plan.init.is_empty();
    let containers = plan
        .slots()
        .map(|c| ContainerObservation {
            name: c.name.clone(),
            kind: c.kind,
            state: ContainerRunState::Waiting {
                reason: if initializing && c.kind == ContainerKind::App {
                    "PodInitializing".to_owned()
                } else {
                    "ContainerCreating".to_owned()
                },
                message: String::new(),
            },
            ..ContainerObservation::default()
        })
        .collect();
    let mut obs = PodObservation {
        name: pod.name.clone(),
        uid: pod.name.clone(),
        labels: pod.labels.clone(),
        annotations: pod.annotations.clone(),
        phase: PodPhase::Pending,
        containers,
        created_at: Some(now),
        ..PodObservation::default()
    };
    set_condition(&mut obs.conditions, "PodScheduled", true, now);
    refresh(&mut obs, &plan.restart_policy, now);
    obs
}

/// The termination of a run that exited with `code` or was killed by `signal`. `oom` says a
/// cgroup reported an out-of-memory kill during the run.
pub(crate) fn terminated(
    code: Option<i32>,
    signal: Option<i32>,
    oom: bool,
    started_at: Timestamp,
    finished_at: Timestamp,
) -> Terminated {
    let (exit_code, signal) = match (code, signal) {
        _ if oom => (128 + 9, Some(9)),
        (Some(c), _) => (c, None),
        (None, Some(s)) => (128 + s, Some(s)),
        (None, None) => (128, None),
    };
    let reason = if oom {
        "OOMKilled"
    } else if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    Terminated {
        exit_code,
        signal,
        reason: reason.to_owned(),
        message: if oom {
            "the container exceeded its memory limit".to_owned()
        } else {
            String::new()
        },
        started_at: Some(started_at),
        finished_at: Some(finished_at),
    }
}

/// The termination of a container that could not start.
pub(crate) fn start_error(problem: &StartProblem, now: Timestamp) -> Terminated {
    Terminated {
        exit_code: problem.exit_code,
        signal: None,
        reason: "StartError".to_owned(),
        message: problem.message.clone(),
        started_at: Some(now),
        finished_at: Some(now),
    }
}

/// Sets a condition, moving its transition time only when its status changes.
pub(crate) fn set_condition(
    conditions: &mut Vec<PodCondition>,
    type_: &str,
    status: bool,
    now: Timestamp,
) {
    let status = if status {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == status => {}
        Some(c) => {
            c.status = status;
            c.last_transition_time = Some(now);
        }
        None => conditions.push(PodCondition {
            type_: type_.to_owned(),
            status,
            reason: String::new(),
            last_transition_time: Some(now),
        }),
    }
}

/// Recomputes the phase (non-terminal: the pod is still running), readiness and conditions
/// after a container changed.
pub(crate) fn refresh(obs: &mut PodObservation, policy: &RestartPolicy, now: Timestamp) {
    if !obs.phase.is_terminal() {
        // Terminal phases are reported once every process has ended (`finish`). Until then a
        // pod whose regular init container failed (restartPolicy Never), and whose app
        // containers never started, is still initializing: Pending, not Running.
        let apps_started = obs.containers.iter().any(|c| {
            c.kind == ContainerKind::App && !matches!(c.state, ContainerRunState::Waiting { .. })
        });
        obs.phase = match derive_phase(policy, &obs.containers, false) {
            PodPhase::Pending => PodPhase::Pending,
            PodPhase::Failed if !apps_started => PodPhase::Pending,
            _ => PodPhase::Running,
        };
    }
    let initialized = obs
        .containers
        .iter()
        .filter(|c| c.kind == ContainerKind::Init)
        .all(|c| c.terminated().is_some_and(|t| t.exit_code == 0))
        && obs
            .containers
            .iter()
            .filter(|c| c.kind == ContainerKind::Sidecar)
            .all(|c| matches!(c.state, ContainerRunState::Running { .. }));
    let apps_ready = obs
        .containers
        .iter()
        .filter(|c| c.kind != ContainerKind::Init)
        .all(|c| c.ready);
    let ready = obs.phase == PodPhase::Running && apps_ready;
    if initialized || obs.phase != PodPhase::Pending {
        set_condition(&mut obs.conditions, "Initialized", true, now);
    } else {
        set_condition(&mut obs.conditions, "Initialized", false, now);
    }
    set_condition(&mut obs.conditions, "ContainersReady", ready, now);
    set_condition(&mut obs.conditions, "Ready", ready, now);
    obs.ready = ready;
}

/// Marks the pod finished: its final phase from its containers (every process has ended).
pub(crate) fn finish(
    obs: &mut PodObservation,
    policy: &RestartPolicy,
    deadline_exceeded: bool,
    now: Timestamp,
) {
    for c in &mut obs.containers {
        c.ready = false;
    }
    obs.phase = if deadline_exceeded {
        obs.reason = DEADLINE_EXCEEDED.to_owned();
        obs.message = DEADLINE_MESSAGE.to_owned();
        PodPhase::Failed
    } else {
        derive_phase(policy, &obs.containers, true)
    };
    obs.finished_at = Some(now);
    refresh(obs, policy, now);
}

/// The pod phase from its containers, as the kubelet's `getPhase` derives it. `finished`
/// says every process of the pod has ended and none will restart (the app containers are
/// done, or the pod was stopped).
///
/// Native sidecars never decide the phase. A regular init container that failed under
/// `restartPolicy: Never` fails the pod. Once finished, the pod succeeded only if every app
/// container exited 0.
pub(crate) fn derive_phase(
    policy: &RestartPolicy,
    containers: &[ContainerObservation],
    finished: bool,
) -> PodPhase {
    let init = containers.iter().filter(|c| c.kind == ContainerKind::Init);
    let mut init_pending = false;
    for c in init {
        match c.terminated() {
            Some(t) if t.exit_code == 0 => {}
            Some(_) if *policy == RestartPolicy::Never => return PodPhase::Failed,
            _ => init_pending = true,
        }
    }
    let apps: Vec<&ContainerObservation> = containers
        .iter()
        .filter(|c| c.kind == ContainerKind::App)
        .collect();
    if finished {
        let all_ok = !apps.is_empty()
            && apps
                .iter()
                .all(|c| c.terminated().is_some_and(|t| t.exit_code == 0));
        return if all_ok && !init_pending {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        };
    }
    if init_pending {
        return PodPhase::Pending;
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in &apps {
        match &c.state {
            ContainerRunState::Running { .. } => running += 1,
            ContainerRunState::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            // A container waiting to restart counts as stopped, as in the kubelet.
            _ if c.last_state.is_some() => stopped += 1,
            _ => waiting += 1,
        }
    }
    if waiting > 0 {
        PodPhase::Pending
    } else if running > 0 {
        PodPhase::Running
    } else if stopped > 0 {
        match policy {
            RestartPolicy::Never if stopped != succeeded => PodPhase::Failed,
            RestartPolicy::Never | RestartPolicy::OnFailure if stopped == succeeded => {
                PodPhase::Succeeded
            }
            _ => PodPhase::Running,
        }
    } else {
        PodPhase::Pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use chrono::TimeZone;

    fn t0() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn c(kind: ContainerKind, state: ContainerRunState) -> ContainerObservation {
        ContainerObservation {
            name: "c".into(),
            kind,
            state,
            ..ContainerObservation::default()
        }
    }

    fn exited(code: i32) -> ContainerRunState {
        ContainerRunState::Terminated(terminated(Some(code), None, false, t0(), t0()))
    }

    fn running() -> ContainerRunState {
        ContainerRunState::Running {
            started_at: Some(t0()),
        }
    }

    fn waiting() -> ContainerRunState {
        ContainerRunState::default()
    }

    use ContainerKind::{App, Init, Sidecar};

    #[test]
    fn never_pod_fails_only_when_every_app_container_ended_and_one_failed() {
        let p = RestartPolicy::Never;
        let both = [c(App, exited(1)), c(App, running())];
        assert_eq!(derive_phase(&p, &both, false), PodPhase::Running);
        let done = [c(App, exited(1)), c(App, exited(0))];
        assert_eq!(derive_phase(&p, &done, true), PodPhase::Failed);
        let ok = [c(App, exited(0)), c(App, exited(0))];
        assert_eq!(derive_phase(&p, &ok, true), PodPhase::Succeeded);
    }

    #[test]
    fn a_never_pod_whose_init_container_failed_is_pending_until_its_sidecars_stop() {
        let p = RestartPolicy::Never;
        let mut obs = PodObservation {
            containers: vec![c(App, waiting()), c(Sidecar, running()), c(Init, exited(1))],
            ..PodObservation::default()
        };
        refresh(&mut obs, &p, t0());
        assert_eq!(
            obs.phase,
            PodPhase::Pending,
            "not Running: no app container ran"
        );
        assert!(!obs.ready);
        // Once the sidecar has stopped, the pod is finished: Failed.
        obs.containers[1].state = exited(143);
        finish(&mut obs, &p, false, t0());
        assert_eq!(obs.phase, PodPhase::Failed);
    }

    #[test]
    fn sidecar_exit_codes_do_not_decide_the_phase() {
        let p = RestartPolicy::Never;
        let cs = [c(App, exited(0)), c(Sidecar, exited(143))];
        assert_eq!(derive_phase(&p, &cs, true), PodPhase::Succeeded);
    }

    #[test]
    fn a_failed_init_container_fails_a_never_pod_and_keeps_an_on_failure_pod_pending() {
        let cs = [c(App, waiting()), c(Init, exited(2))];
        assert_eq!(
            derive_phase(&RestartPolicy::Never, &cs, false),
            PodPhase::Failed
        );
        let mut restarting = cs.clone();
        restarting[1].state = waiting();
        restarting[1].last_state = Some(terminated(Some(2), None, false, t0(), t0()));
        assert_eq!(
            derive_phase(&RestartPolicy::OnFailure, &restarting, false),
            PodPhase::Pending
        );
        let init_running = [c(App, waiting()), c(Init, running())];
        assert_eq!(
            derive_phase(&RestartPolicy::Never, &init_running, false),
            PodPhase::Pending
        );
    }

    #[test]
    fn a_restarting_container_keeps_the_pod_running() {
        let mut app = c(App, waiting());
        app.last_state = Some(terminated(Some(1), None, false, t0(), t0()));
        assert_eq!(
            derive_phase(&RestartPolicy::OnFailure, &[app], false),
            PodPhase::Running
        );
    }

    #[test]
    fn a_stopped_pod_whose_containers_never_ran_failed() {
        let cs = [c(App, waiting()), c(Init, running())];
        assert_eq!(
            derive_phase(&RestartPolicy::Never, &cs, true),
            PodPhase::Failed
        );
    }

    #[test]
    fn signals_and_oom_map_to_exit_codes_and_reasons() {
        let k = terminated(None, Some(9), false, t0(), t0());
        assert_eq!(
            (k.exit_code, k.signal, k.reason.as_str()),
            (137, Some(9), "Error")
        );
        let t = terminated(None, Some(15), false, t0(), t0());
        assert_eq!((t.exit_code, t.signal), (143, Some(15)));
        let o = terminated(None, Some(9), true, t0(), t0());
        assert_eq!((o.exit_code, o.reason.as_str()), (137, "OOMKilled"));
        let ok = terminated(Some(0), None, false, t0(), t0());
        assert_eq!(ok.reason, "Completed");
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_five_minutes_and_resets_after_a_long_run() {
        let s = chrono::Duration::seconds;
        let mut d = None;
        let mut seen = Vec::new();
        for _ in 0..7 {
            let next = next_backoff(d, s(1));
            seen.push(next.num_seconds());
            d = Some(next);
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(next_backoff(Some(s(300)), s(600)), s(10));
    }

    #[test]
    fn deadline_fails_the_pod_with_the_kubelet_reason() {
        let mut obs = PodObservation {
            containers: vec![c(App, exited(0))],
            ..PodObservation::default()
        };
        finish(&mut obs, &RestartPolicy::Never, true, t0());
        assert_eq!(obs.phase, PodPhase::Failed);
        assert_eq!(obs.reason, DEADLINE_EXCEEDED);
        assert_eq!(obs.finished_at, Some(t0()));
        assert!(!obs.ready);
    }

    #[test]
    fn ready_condition_follows_running_app_containers() {
        let mut obs = PodObservation {
            containers: vec![ContainerObservation {
                ready: true,
                ..c(App, running())
            }],
            ..PodObservation::default()
        };
        refresh(&mut obs, &RestartPolicy::Never, t0());
        assert_eq!(obs.phase, PodPhase::Running);
        assert!(obs.ready);
        let ready = obs.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, ConditionStatus::True);
        assert_eq!(ready.last_transition_time, Some(t0()));
    }
}
