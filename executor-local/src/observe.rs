//! Process results → [`PodObservation`]: container terminations, the pod phase (derived as
//! the kubelet's `getPhase` does), conditions and the restart backoff.
//!
//! Pure: times are parameters.

use batch_core::executor::{
    ContainerKind, ContainerObservation, ContainerRunState, PodObservation, Terminated,
};
use batch_core::job::PodPhase;
use batch_core::model::Timestamp;

use crate::translate::{PodPlan, StartProblem};

pub(crate) use batch_core::kubelet::{finish, next_backoff, refresh, set_condition};

/// Pod reason when its shim was told to stop it without deleting it (SIGTERM without a stop
/// request), as the kubelet's for pods stopped by a node shutdown.
pub(crate) const SHUT_DOWN: &str = "Terminated";
/// Pod message with [`SHUT_DOWN`].
pub(crate) const SHUT_DOWN_MESSAGE: &str =
    "the pod's shim received SIGTERM without a deletion and stopped the pod";
/// Pod reason when the executor that ran a pod exited before recording its outcome.
pub(crate) const EXECUTOR_LOST: &str = "ExecutorLost";

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use batch_core::kubelet::{DEADLINE_EXCEEDED, derive_phase};
    use batch_core::model::{ConditionStatus, RestartPolicy};
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
