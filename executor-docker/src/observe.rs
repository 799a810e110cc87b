//! Engine state → [`PodObservation`] and what to do next: the pod's supervision, as a pure
//! function of the containers the engine holds for it and the time.
//!
//! Level-triggered: every decision is derived from the engine's state (which runs of which
//! containers exist, how each ended), not from remembered events, so an executor that
//! adopts a pod after a restart (its own or the engine's) carries on exactly where the
//! earlier one was.

use batch_core::executor::{
    ContainerKind, ContainerObservation, ContainerRunState, PodObservation, Terminated,
};
use batch_core::job::PodCondition;
use batch_core::kubelet;
use batch_core::model::{ConditionStatus, RestartPolicy, Timestamp};
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};

use crate::translate::{ContainerPlan, PodPlan};

/// Pod condition type set when an image cannot be pulled (see docs/decisions/0008), so that
/// a pod failure policy can match it (`onPodConditions: [{type: ConfigIssue}]`).
pub(crate) const CONFIG_ISSUE: &str = "ConfigIssue";
/// Container reason when its image cannot be pulled (the kubelet's).
pub(crate) const PULL_FAILED: &str = "ErrImagePull";

/// One run of a container (one engine container).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    /// 0 for the first run, +1 for each in-place restart.
    pub(crate) attempt: u32,
    /// The engine container's id (empty when it could not be created).
    pub(crate) id: String,
    /// Its state.
    pub(crate) state: RunState,
}

/// The state of one run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RunState {
    /// Created, not started yet.
    Created,
    /// Running since then.
    Running(Option<Timestamp>),
    /// Ended (or could not start).
    Ended(Terminated),
}

fn time(s: Option<&String>) -> Option<Timestamp> {
    let s = s?;
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .ok()?
        .with_timezone(&chrono::Utc);
    // The engine reports "0001-01-01T00:00:00Z" for never.
    (t.timestamp() > 0).then_some(t)
}

/// The state of a run from the engine's inspection of its container.
pub(crate) fn run_state(inspect: &ContainerInspectResponse) -> RunState {
    let Some(state) = &inspect.state else {
        return RunState::Created;
    };
    let code = state
        .exit_code
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(0);
    let error = state.error.clone().unwrap_or_default();
    let started_at = time(state.started_at.as_ref());
    let finished_at = time(state.finished_at.as_ref());
    match state.status {
        Some(ContainerStateStatusEnum::CREATED) | None if error.is_empty() => RunState::Created,
        // Never started: the engine's error says why (it marks the container exited).
        Some(
            ContainerStateStatusEnum::CREATED
            | ContainerStateStatusEnum::EXITED
            | ContainerStateStatusEnum::DEAD,
        )
        | None
            if !error.is_empty() && started_at.is_none() =>
        {
            RunState::Ended(Terminated {
                // The engine reports 127 (not found) or 126 (not executable) when it knows why;
                // the kubelet reports 128 for other failures to start.
                exit_code: if code == 0 { 128 } else { code },
                signal: None,
                reason: "StartError".to_owned(),
                message: error,
                started_at: None,
                finished_at,
            })
        }
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::PAUSED,
        ) => RunState::Running(started_at),
        _ => {
            let oom = state.oom_killed == Some(true);
            RunState::Ended(Terminated {
                exit_code: code,
                signal: None,
                reason: if oom {
                    "OOMKilled"
                } else if code == 0 {
                    "Completed"
                } else {
                    "Error"
                }
                .to_owned(),
                message: if oom {
                    "the container exceeded its memory limit".to_owned()
                } else {
                    error
                },
                started_at,
                // The engine stamps the start when its own bookkeeping is done and the end
                // from the runtime's exit event: a program that ends at once can be recorded
                // finished a few microseconds before it was recorded started.
                finished_at: match (started_at, finished_at) {
                    (Some(s), Some(f)) if f < s => Some(s),
                    _ => finished_at,
                },
            })
        }
    }
}

/// How long a memory-limited run killed by SIGKILL may wait for the engine to mark it
/// `OOMKilled`.
pub(crate) const OOM_SETTLE: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// A run the engine may not be done recording: Docker 20.10 takes a container's OOM kill
/// from the runtime's OOM event, which can come after its exit event under load; it then
/// marks the stopped container `OOMKilled` (and sends an `oom` event) a moment later. So a
/// run with a memory limit that ended with 137 (SIGKILL), not marked `OOMKilled`, less than
/// [`OOM_SETTLE`] before `now`, is taken as still running; the `oom` event or the next look
/// settles it. Any other run is `state` itself.
pub(crate) fn settled(
    state: RunState,
    inspect: &ContainerInspectResponse,
    now: Timestamp,
) -> RunState {
    let limited = inspect
        .host_config
        .as_ref()
        .and_then(|h| h.memory)
        .is_some_and(|m| m > 0);
    match state {
        RunState::Ended(t)
            if limited
                && t.exit_code == 137
                && t.reason != "OOMKilled"
                && t.finished_at.is_some_and(|f| now - f < OOM_SETTLE) =>
        {
            RunState::Running(t.started_at)
        }
        other => other,
    }
}

/// What the engine holds of a pod: the runs of each container, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Snapshot {
    pub(crate) runs: std::collections::HashMap<String, Vec<Run>>,
}

impl Snapshot {
    fn runs(&self, container: &str) -> &[Run] {
        self.runs.get(container).map_or(&[], Vec::as_slice)
    }
}

/// Something to do to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Create and start run `attempt` of a container (by its index in
    /// [`PodPlan::slots`]).
    Create { slot: usize, attempt: u32 },
    /// Start a created run.
    Start { id: String },
    /// Stop a running run with the pod's grace period (or the deletion's).
    Stop { id: String },
}

/// Why the pod is being stopped as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Stopping {
    /// It is being deleted.
    pub(crate) deleting: bool,
    /// Its `activeDeadlineSeconds` passed before it finished.
    pub(crate) deadline: bool,
}

/// The outcome of one look at a pod.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    /// The containers as observed (apps, then init containers).
    pub(crate) containers: Vec<ContainerObservation>,
    /// What to do now.
    pub(crate) actions: Vec<Action>,
    /// When to look again at the latest (a restart back-off ends).
    pub(crate) wake_at: Option<Timestamp>,
    /// Every process of the pod has ended and none will restart: the pod's end time.
    pub(crate) finished: Option<Timestamp>,
}

/// Whether a run that ended this way is restarted in place.
fn restarts(kind: ContainerKind, policy: &RestartPolicy, t: &Terminated) -> bool {
    match kind {
        ContainerKind::Sidecar => true,
        _ => *policy != RestartPolicy::Never && t.exit_code != 0,
    }
}

/// When the next run of a container whose runs are `runs` (the last one ended) may start:
/// the kubelet's back-off (10 s, doubling, at most 5 min; reset after a long run).
fn restart_at(runs: &[Run]) -> Option<Timestamp> {
    let mut delay = None;
    let mut last_end = None;
    for run in runs {
        let RunState::Ended(t) = &run.state else {
            return None;
        };
        let ran_for = match (t.started_at, t.finished_at) {
            (Some(s), Some(f)) => f - s,
            _ => chrono::Duration::zero(),
        };
        delay = Some(kubelet::next_backoff(delay, ran_for));
        last_end = t.finished_at;
    }
    Some(last_end? + delay?)
}

/// One look at a pod: its containers' observations, what to do, when to look again.
pub(crate) fn step(
    plan: &PodPlan,
    snapshot: &Snapshot,
    stopping: Stopping,
    now: Timestamp,
) -> Step {
    let policy = &plan.restart_policy;
    let stop_all = stopping.deleting || stopping.deadline;
    let slots: Vec<&ContainerPlan> = plan.slots().collect();
    let mut actions = Vec::new();
    let mut wake_at: Option<Timestamp> = None;
    let mut due = |runs: &[Run], slot: usize, actions: &mut Vec<Action>| {
        if let Some(at) = restart_at(runs) {
            if at <= now {
                let attempt = runs.last().map_or(0, |r| r.attempt + 1);
                actions.push(Action::Create { slot, attempt });
            } else {
                wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
            }
        }
    };
    // Init containers, in order; then the app containers.
    let mut init_done = true;
    let mut init_failed = false;
    if !stop_all {
        for (i, c) in plan.init.iter().enumerate() {
            let slot = plan.apps.len() + i;
            let runs = snapshot.runs(&c.name);
            match runs.last().map(|r| &r.state) {
                None => {
                    actions.push(Action::Create { slot, attempt: 0 });
                    init_done = false;
                }
                Some(RunState::Created) => {
                    actions.push(Action::Start {
                        id: runs.last().map(|r| r.id.clone()).unwrap_or_default(),
                    });
                    init_done = false;
                }
                Some(RunState::Running(_)) => init_done = c.kind == ContainerKind::Sidecar,
                Some(RunState::Ended(t)) => {
                    if c.kind == ContainerKind::Sidecar {
                        due(runs, slot, &mut actions);
                        continue;
                    }
                    if t.exit_code == 0 {
                        continue;
                    }
                    init_done = false;
                    if restarts(c.kind, policy, t) {
                        due(runs, slot, &mut actions);
                    } else {
                        init_failed = true;
                    }
                }
            }
            if !init_done {
                break;
            }
        }
    }
    let apps_started = init_done && !stop_all;
    let mut apps_done = true;
    for (slot, c) in plan.apps.iter().enumerate() {
        let runs = snapshot.runs(&c.name);
        match runs.last().map(|r| &r.state) {
            None if apps_started => {
                actions.push(Action::Create { slot, attempt: 0 });
                apps_done = false;
            }
            Some(RunState::Created) if apps_started => {
                actions.push(Action::Start {
                    id: runs.last().map(|r| r.id.clone()).unwrap_or_default(),
                });
                apps_done = false;
            }
            Some(RunState::Ended(t)) => {
                if apps_started && restarts(c.kind, policy, t) {
                    due(runs, slot, &mut actions);
                    apps_done = false;
                }
            }
            _ => apps_done = false,
        }
    }
    // The pod is winding down: the app containers are done (or can no longer start), or
    // it is stopped as a whole. Whatever still runs (sidecars, or everything) is stopped.
    let winding_down = stop_all || init_failed || (init_done && apps_done);
    let mut running = false;
    for c in &slots {
        if let Some(run) = snapshot.runs(&c.name).last()
            && matches!(run.state, RunState::Running(_))
        {
            running = true;
            if winding_down {
                actions.push(Action::Stop { id: run.id.clone() });
            }
        }
    }
    if winding_down {
        actions.retain(|a| matches!(a, Action::Stop { .. }));
        wake_at = None;
    }
    let finished = (winding_down && !running).then(|| {
        slots
            .iter()
            .filter_map(|c| snapshot.runs(&c.name).last())
            .filter_map(|r| match &r.state {
                RunState::Ended(t) => t.finished_at,
                _ => None,
            })
            .max()
            .unwrap_or(now)
    });
    let init_pending = !init_done;
    let containers = slots
        .iter()
        .map(|c| {
            observe_container(
                c,
                snapshot.runs(&c.name),
                policy,
                init_pending,
                winding_down,
            )
        })
        .collect();
    Step {
        containers,
        actions,
        wake_at,
        finished,
    }
}

fn observe_container(
    c: &ContainerPlan,
    runs: &[Run],
    policy: &RestartPolicy,
    init_pending: bool,
    winding_down: bool,
) -> ContainerObservation {
    let waiting = |reason: &str| ContainerRunState::Waiting {
        reason: reason.to_owned(),
        message: String::new(),
    };
    let previous = runs
        .len()
        .checked_sub(2)
        .and_then(|i| match &runs[i].state {
            RunState::Ended(t) => Some(t.clone()),
            _ => None,
        });
    let (state, last_state) = match runs.last().map(|r| &r.state) {
        // An image that cannot be pulled: the container never ran (the kubelet's reasons).
        Some(RunState::Ended(t)) if t.reason == PULL_FAILED => {
            let reason = if !winding_down && restarts(c.kind, policy, t) {
                "ImagePullBackOff"
            } else {
                PULL_FAILED
            };
            let state = ContainerRunState::Waiting {
                reason: reason.to_owned(),
                message: t.message.clone(),
            };
            (state, previous)
        }
        None if init_pending && c.kind == ContainerKind::App => (waiting("PodInitializing"), None),
        None | Some(RunState::Created) => (waiting("ContainerCreating"), previous),
        Some(RunState::Running(at)) => (ContainerRunState::Running { started_at: *at }, previous),
        Some(RunState::Ended(t)) if !winding_down && restarts(c.kind, policy, t) => {
            (waiting("CrashLoopBackOff"), Some(t.clone()))
        }
        Some(RunState::Ended(t)) => (ContainerRunState::Terminated(t.clone()), previous),
    };
    let ready = matches!(state, ContainerRunState::Running { .. });
    ContainerObservation {
        name: c.name.clone(),
        kind: c.kind,
        state,
        last_state,
        restart_count: runs
            .last()
            .map_or(0, |r| i32::try_from(r.attempt).unwrap_or(i32::MAX)),
        ready,
    }
}

/// Updates a pod's observation from one [`Step`]: containers, phase, conditions, the end.
pub(crate) fn apply(
    obs: &mut PodObservation,
    step: &Step,
    plan: &PodPlan,
    stopping: Stopping,
    now: Timestamp,
) {
    obs.containers = step.containers.clone();
    if obs.started_at.is_none() {
        obs.started_at = obs
            .containers
            .iter()
            .filter_map(|c| match &c.state {
                ContainerRunState::Running { started_at } => *started_at,
                ContainerRunState::Terminated(t) => t.started_at,
                _ => c.last_state.as_ref()?.started_at,
            })
            .min();
    }
    let pull_failure = obs.containers.iter().find_map(|c| match &c.state {
        ContainerRunState::Waiting { reason, message }
            if reason == PULL_FAILED || reason == "ImagePullBackOff" =>
        {
            Some((PULL_FAILED.to_owned(), message.clone()))
        }
        _ => None,
    });
    if let Some((reason, _)) = &pull_failure
        && !obs.conditions.iter().any(|c| c.type_ == CONFIG_ISSUE)
    {
        obs.conditions.push(PodCondition {
            type_: CONFIG_ISSUE.to_owned(),
            status: ConditionStatus::True,
            reason: reason.clone(),
            last_transition_time: Some(now),
        });
    }
    match step.finished {
        Some(at) if !obs.phase.is_terminal() => {
            kubelet::finish(obs, &plan.restart_policy, stopping.deadline, at);
            if let Some((reason, message)) = pull_failure
                && obs.reason.is_empty()
            {
                obs.reason = reason;
                obs.message = message;
            }
        }
        Some(_) => {
            for c in &mut obs.containers {
                c.ready = false;
            }
        }
        None => kubelet::refresh(obs, &plan.restart_policy, now),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::config::DockerExecutorConfig;
    use batch_core::executor::PodRequest;
    use batch_core::job::PodPhase;
    use chrono::TimeZone;

    fn t(s: i64) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn plan(yaml: &str) -> PodPlan {
        let request = PodRequest {
            name: "p".to_owned(),
            job: batch_core::executor::JobRef {
                namespace: String::new(),
                name: "j".to_owned(),
                uid: "u".to_owned(),
            },
            index: None,
            labels: Default::default(),
            annotations: Default::default(),
            hostname: None,
            spec: serde_norway::from_str(yaml).unwrap(),
        };
        crate::translate::plan(&request, &DockerExecutorConfig::default())
    }

    fn ended(attempt: u32, code: i32, start: i64, end: i64) -> Run {
        Run {
            attempt,
            id: format!("id-{attempt}"),
            state: RunState::Ended(Terminated {
                exit_code: code,
                reason: if code == 0 { "Completed" } else { "Error" }.to_owned(),
                started_at: Some(t(start)),
                finished_at: Some(t(end)),
                ..Terminated::default()
            }),
        }
    }

    fn running(id: &str) -> Run {
        Run {
            attempt: 0,
            id: id.to_owned(),
            state: RunState::Running(Some(t(0))),
        }
    }

    fn snap(runs: &[(&str, Vec<Run>)]) -> Snapshot {
        Snapshot {
            runs: runs
                .iter()
                .map(|(n, r)| ((*n).to_owned(), r.clone()))
                .collect(),
        }
    }

    const INIT_AND_SIDECAR: &str = "
restartPolicy: Never
initContainers:
- {name: setup, image: busybox}
- {name: side, image: busybox, restartPolicy: Always}
containers:
- {name: main, image: busybox}
";

    #[test]
    fn init_containers_run_one_at_a_time_then_sidecars_then_apps() {
        let p = plan(INIT_AND_SIDECAR);
        // Slots: main (0), setup (1), side (2).
        let s = step(&p, &Snapshot::default(), Stopping::default(), t(0));
        assert_eq!(
            s.actions,
            vec![Action::Create {
                slot: 1,
                attempt: 0
            }]
        );
        assert_eq!(s.finished, None);
        let s = step(
            &p,
            &snap(&[("setup", vec![running("a")])]),
            Stopping::default(),
            t(1),
        );
        assert!(s.actions.is_empty(), "{:?}", s.actions);
        let done = ("setup", vec![ended(0, 0, 0, 1)]);
        let s = step(
            &p,
            &snap(std::slice::from_ref(&done)),
            Stopping::default(),
            t(2),
        );
        assert_eq!(
            s.actions,
            vec![Action::Create {
                slot: 2,
                attempt: 0
            }]
        );
        let s = step(
            &p,
            &snap(&[done.clone(), ("side", vec![running("s")])]),
            Stopping::default(),
            t(3),
        );
        assert_eq!(
            s.actions,
            vec![Action::Create {
                slot: 0,
                attempt: 0
            }]
        );
        // The app container ends: the sidecar is stopped; the pod finishes once it has.
        let main = ("main", vec![ended(0, 0, 3, 5)]);
        let s = step(
            &p,
            &snap(&[done.clone(), ("side", vec![running("s")]), main.clone()]),
            Stopping::default(),
            t(6),
        );
        assert_eq!(s.actions, vec![Action::Stop { id: "s".to_owned() }]);
        assert_eq!(s.finished, None);
        let side_stopped = ("side", vec![ended(0, 143, 2, 7)]);
        let s = step(
            &p,
            &snap(&[done, side_stopped, main]),
            Stopping::default(),
            t(8),
        );
        assert!(
            s.actions.is_empty(),
            "a stopped sidecar is not restarted: {:?}",
            s.actions
        );
        assert_eq!(s.finished, Some(t(7)));
        let mut obs = PodObservation::default();
        apply(&mut obs, &s, &p, Stopping::default(), t(8));
        assert_eq!(
            obs.phase,
            PodPhase::Succeeded,
            "sidecar exit codes do not count"
        );
    }

    #[test]
    fn a_failed_init_container_fails_a_never_pod_without_starting_apps() {
        let p = plan(INIT_AND_SIDECAR);
        let s = step(
            &p,
            &snap(&[("setup", vec![ended(0, 3, 0, 1)])]),
            Stopping::default(),
            t(2),
        );
        assert!(s.actions.is_empty());
        assert_eq!(s.finished, Some(t(1)));
        let mut obs = PodObservation::default();
        apply(&mut obs, &s, &p, Stopping::default(), t(2));
        assert_eq!(obs.phase, PodPhase::Failed);
        assert!(matches!(
            &obs.containers[0].state,
            ContainerRunState::Waiting { reason, .. } if reason == "PodInitializing"
        ));
    }

    #[test]
    fn on_failure_restarts_after_the_kubelet_back_off_as_a_new_run() {
        let p = plan("restartPolicy: OnFailure\ncontainers: [{name: main, image: busybox}]");
        let first = vec![ended(0, 1, 0, 1)];
        let s = step(
            &p,
            &snap(&[("main", first.clone())]),
            Stopping::default(),
            t(5),
        );
        assert!(s.actions.is_empty());
        assert_eq!(s.wake_at, Some(t(11)), "10 s after the first failure");
        assert_eq!(s.containers[0].restart_count, 0);
        assert!(matches!(
            &s.containers[0].state,
            ContainerRunState::Waiting { reason, .. } if reason == "CrashLoopBackOff"
        ));
        let s = step(
            &p,
            &snap(&[("main", first.clone())]),
            Stopping::default(),
            t(11),
        );
        assert_eq!(
            s.actions,
            vec![Action::Create {
                slot: 0,
                attempt: 1
            }]
        );
        let two = vec![ended(0, 1, 0, 1), ended(1, 1, 11, 12)];
        let s = step(&p, &snap(&[("main", two)]), Stopping::default(), t(12));
        assert_eq!(s.wake_at, Some(t(32)), "then 20 s");
        assert_eq!(s.containers[0].restart_count, 1);
        assert_eq!(
            s.containers[0].last_state.as_ref().map(|l| l.exit_code),
            Some(1)
        );
        let ok = vec![ended(0, 1, 0, 1), ended(1, 0, 11, 12)];
        let s = step(&p, &snap(&[("main", ok)]), Stopping::default(), t(13));
        assert_eq!(s.finished, Some(t(12)));
    }

    #[test]
    fn a_deadline_or_a_deletion_stops_everything_and_starts_nothing() {
        let p = plan(INIT_AND_SIDECAR);
        let live = snap(&[
            ("setup", vec![ended(0, 0, 0, 1)]),
            ("side", vec![running("s")]),
        ]);
        for stopping in [
            Stopping {
                deleting: true,
                deadline: false,
            },
            Stopping {
                deleting: false,
                deadline: true,
            },
        ] {
            let s = step(&p, &live, stopping, t(9));
            assert_eq!(s.actions, vec![Action::Stop { id: "s".to_owned() }]);
            assert_eq!(s.finished, None);
        }
        let stopped = snap(&[
            ("setup", vec![ended(0, 0, 0, 1)]),
            ("side", vec![ended(0, 137, 2, 9)]),
        ]);
        let deadline = Stopping {
            deleting: false,
            deadline: true,
        };
        let s = step(&p, &stopped, deadline, t(10));
        let mut obs = PodObservation::default();
        apply(&mut obs, &s, &p, deadline, t(10));
        assert_eq!(
            (obs.phase, obs.reason.as_str()),
            (PodPhase::Failed, "DeadlineExceeded")
        );
    }

    #[test]
    fn an_image_that_cannot_be_pulled_fails_the_pod_with_a_config_issue() {
        let p = plan("restartPolicy: Never\ncontainers: [{name: main, image: nope}]");
        let pull = Run {
            attempt: 0,
            id: String::new(),
            state: RunState::Ended(Terminated {
                exit_code: 128,
                reason: PULL_FAILED.to_owned(),
                message: "cannot pull image \"nope\": no such host".to_owned(),
                finished_at: Some(t(1)),
                ..Terminated::default()
            }),
        };
        let s = step(
            &p,
            &snap(&[("main", vec![pull])]),
            Stopping::default(),
            t(2),
        );
        let mut obs = PodObservation::default();
        apply(&mut obs, &s, &p, Stopping::default(), t(2));
        assert_eq!(
            (obs.phase, obs.reason.as_str()),
            (PodPhase::Failed, PULL_FAILED)
        );
        assert!(obs.message.contains("no such host"));
        assert!(matches!(
            &obs.containers[0].state,
            ContainerRunState::Waiting { reason, .. } if reason == PULL_FAILED
        ));
        let c = obs
            .conditions
            .iter()
            .find(|c| c.type_ == CONFIG_ISSUE)
            .unwrap();
        assert_eq!(c.status, ConditionStatus::True);
        let observed = obs.to_observed_pod(false);
        assert_eq!(
            observed.containers[0].exit_code, None,
            "no exit code to match"
        );
    }

    #[test]
    fn engine_states_map_to_runs() {
        let inspect = |json: &str| -> ContainerInspectResponse {
            serde_json::from_str(&format!("{{\"State\": {json}}}")).unwrap()
        };
        let never = "0001-01-01T00:00:00Z";
        let created = inspect(&format!(
            r#"{{"Status":"created","ExitCode":0,"Error":"","StartedAt":"{never}"}}"#
        ));
        assert_eq!(run_state(&created), RunState::Created);
        let cannot = inspect(&format!(
            r#"{{"Status":"created","ExitCode":127,"Error":"exec: \"nope\": executable file not found in $PATH","StartedAt":"{never}","FinishedAt":"{never}"}}"#
        ));
        let RunState::Ended(t1) = run_state(&cannot) else {
            panic!()
        };
        assert_eq!((t1.exit_code, t1.reason.as_str()), (127, "StartError"));
        assert!(t1.message.contains("executable file not found"));
        let oom = inspect(
            r#"{"Status":"exited","ExitCode":137,"OOMKilled":true,"StartedAt":"2026-01-01T00:00:00Z","FinishedAt":"2026-01-01T00:00:02Z"}"#,
        );
        let RunState::Ended(t2) = run_state(&oom) else {
            panic!()
        };
        assert_eq!((t2.exit_code, t2.reason.as_str()), (137, "OOMKilled"));
        assert_eq!(t2.finished_at, Some(t(2)));
        // Killed (137) with a memory limit, not (yet) marked OOMKilled: still settling for
        // OOM_SETTLE after its end, then an Error; without a limit, an Error at once.
        let killed = |memory: u64| -> ContainerInspectResponse {
            serde_json::from_str(&format!(
                r#"{{"State": {{"Status":"exited","ExitCode":137,"OOMKilled":false,"StartedAt":"2026-01-01T00:00:00Z","FinishedAt":"2026-01-01T00:00:02Z"}}, "HostConfig": {{"Memory": {memory}}}}}"#
            ))
            .unwrap()
        };
        let limited = killed(64 << 20);
        assert_eq!(
            settled(run_state(&limited), &limited, t(3)),
            RunState::Running(Some(t(0)))
        );
        let RunState::Ended(late) = settled(run_state(&limited), &limited, t(4)) else {
            panic!()
        };
        assert_eq!((late.exit_code, late.reason.as_str()), (137, "Error"));
        let unlimited = killed(0);
        assert!(matches!(
            settled(run_state(&unlimited), &unlimited, t(3)),
            RunState::Ended(_)
        ));
        assert!(matches!(
            settled(run_state(&oom), &oom, t(2)),
            RunState::Ended(ref e) if e.reason == "OOMKilled"
        ));
        let failed = inspect(
            r#"{"Status":"exited","ExitCode":3,"StartedAt":"2026-01-01T00:00:00Z","FinishedAt":"2026-01-01T00:00:01Z"}"#,
        );
        let RunState::Ended(t3) = run_state(&failed) else {
            panic!()
        };
        assert_eq!((t3.exit_code, t3.reason.as_str()), (3, "Error"));
        // An instant program: the engine recorded its end 0.2 µs before its start.
        let instant = inspect(
            r#"{"Status":"exited","ExitCode":0,"StartedAt":"2026-01-01T00:00:01.0000003Z","FinishedAt":"2026-01-01T00:00:01.0000001Z"}"#,
        );
        let RunState::Ended(t4) = run_state(&instant) else {
            panic!()
        };
        assert_eq!(
            t4.finished_at, t4.started_at,
            "never finished before it started"
        );
        assert!(t4.started_at.is_some());
        let live = inspect(r#"{"Status":"running","StartedAt":"2026-01-01T00:00:05Z"}"#);
        assert_eq!(run_state(&live), RunState::Running(Some(t(5))));
    }
}
