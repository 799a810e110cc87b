//! The kubelet's view of a pod, for executors: the phase derived from the containers
//! (`getPhase`), the `Initialized`/`ContainersReady`/`Ready` conditions, the container
//! restart back-off and the deadline reason. Pure: times are parameters.
//!
//! Every executor that supervises containers itself (local processes, Docker) reports pods
//! through these functions, so a pod reads the same whatever runs it.

use crate::executor::{ContainerKind, ContainerObservation, ContainerRunState, PodObservation};
use crate::job::{PodCondition, PodPhase};
use crate::model::{ConditionStatus, RestartPolicy, Timestamp};

/// Pod reason when `activeDeadlineSeconds` passed.
pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
/// Pod message when `activeDeadlineSeconds` passed (the kubelet's text).
pub const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";
/// The kubelet's initial container restart backoff.
pub const BACKOFF_INITIAL: chrono::Duration = chrono::Duration::seconds(10);
/// The kubelet's maximum container restart backoff.
pub const BACKOFF_MAX: chrono::Duration = chrono::Duration::seconds(300);

/// The delay before the next restart of a container, given the previous delay (none before
/// the first restart) and how long the last run lasted: 10 s, doubling, at most 5 min; a
/// run of at least 10 min (twice the maximum) resets it, as in the kubelet.
pub fn next_backoff(
    previous: Option<chrono::Duration>,
    ran_for: chrono::Duration,
) -> chrono::Duration {
    match previous {
        Some(p) if ran_for < BACKOFF_MAX * 2 => (p * 2).min(BACKOFF_MAX),
        _ => BACKOFF_INITIAL,
    }
}

/// Sets a condition, moving its transition time only when its status changes.
pub fn set_condition(
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
pub fn refresh(obs: &mut PodObservation, policy: &RestartPolicy, now: Timestamp) {
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
pub fn finish(
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
pub fn derive_phase(
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
