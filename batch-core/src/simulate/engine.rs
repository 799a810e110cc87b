//! The simulation loop: the real machine, simulated pods, a virtual clock.

use std::collections::HashMap;

use chrono::Duration;

use super::{
    CRASH_LOOP_BASE, CRASH_LOOP_CAP, DEFAULT_TERMINATION_GRACE_PERIOD, KILLED_EXIT_CODE,
    MAX_STEPS_PER_INSTANT, PodRule, SIMULATED_UID, SimEvent, SimEventKind, SimulateError,
    Simulation, SimulationInput,
};
use crate::job::{
    ContainerState, EventType, JobDecision, JobMemory, ObservedPod, PodCondition, PodPhase,
    reconcile,
};
use crate::model::{ConditionStatus, ContainerRestartPolicy, Job, RestartPolicy, Timestamp};

/// The containers of the pod template, as the simulator needs them.
struct Template {
    /// App container names, in order.
    app: Vec<String>,
    /// Init container names, in order, and whether each is a native sidecar.
    init: Vec<(String, bool)>,
    on_failure: bool,
    grace: Duration,
    /// Pod-level `activeDeadlineSeconds`.
    pod_deadline: Option<Duration>,
}

impl Template {
    fn of(job: &Job) -> Self {
        let spec = &job.spec.template.spec;
        Template {
            app: spec.containers.iter().map(|c| c.name.clone()).collect(),
            init: spec
                .init_containers
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        c.restart_policy == Some(ContainerRestartPolicy::Always),
                    )
                })
                .collect(),
            on_failure: spec.restart_policy == RestartPolicy::OnFailure,
            grace: spec
                .termination_grace_period_seconds
                .and_then(|s| Duration::try_seconds(s.max(0)))
                .unwrap_or(DEFAULT_TERMINATION_GRACE_PERIOD),
            pod_deadline: spec
                .active_deadline_seconds
                .and_then(|s| Duration::try_seconds(s.max(0))),
        }
    }
}

/// What the simulator knows about a pod besides what the machine observes.
struct SimPod {
    /// The rule that decides its behaviour (`None`: succeeds at once).
    rule: Option<usize>,
    /// When the current run ends.
    end_at: Option<Timestamp>,
    /// When a crash-looping container starts again (restartPolicy OnFailure).
    restart_at: Option<Timestamp>,
    /// When it is killed (grace period over, or pod deadline).
    kill_at: Option<Timestamp>,
    /// How many times its containers restarted so far.
    restarts: u32,
}

impl SimPod {
    fn next_at(&self) -> Option<Timestamp> {
        [self.end_at, self.restart_at, self.kill_at]
            .into_iter()
            .flatten()
            .min()
    }
}

/// What happens to a pod at its next instant.
enum Change {
    End,
    Restart,
    Kill,
}

struct World<'a> {
    rules: &'a [PodRule],
    template: Template,
    job: Job,
    memory: JobMemory,
    /// What the machine sees, in creation order; `sims` runs alongside.
    observed: Vec<ObservedPod>,
    sims: Vec<SimPod>,
    /// Pods created so far.
    ordinal: u64,
    /// Pods created so far per index.
    attempts: HashMap<i32, u32>,
    events: Vec<SimEvent>,
}

pub(super) fn run(input: &SimulationInput) -> Result<Simulation, SimulateError> {
    let mut job = input.job.clone();
    crate::defaults::prepare_job_for_create(&mut job, SIMULATED_UID);
    if job.metadata.creation_timestamp.is_none() {
        job.metadata.creation_timestamp = Some(input.start);
    }
    crate::validation::validate_job(&job).map_err(SimulateError::InvalidJob)?;
    let template = Template::of(&job);
    check_rules(&input.pods, &template)?;
    let horizon = super::horizon(input.start, input.until)?;

    let mut world = World {
        rules: &input.pods,
        template,
        job,
        memory: JobMemory::default(),
        observed: Vec::new(),
        sims: Vec::new(),
        ordinal: 0,
        attempts: HashMap::new(),
        events: Vec::new(),
    };
    let mut now = input.start;
    let mut steps_here = 0usize;
    loop {
        world.apply_due_changes(now);
        let decision = reconcile(&world.job, &world.observed, &world.memory, now);
        steps_here += 1;
        let changed = world.apply(decision.clone(), now);
        if world.job.status.is_finished() {
            break;
        }
        if changed
            || world
                .sims
                .iter()
                .any(|p| p.next_at().is_some_and(|t| t <= now))
        {
            if steps_here >= MAX_STEPS_PER_INSTANT {
                return Err(SimulateError::Stalled { at: now });
            }
            continue;
        }
        let next = world
            .sims
            .iter()
            .filter_map(SimPod::next_at)
            .chain(decision.requeue_at.filter(|t| *t > now))
            .min();
        match next {
            Some(t) if t <= horizon => {
                now = t;
                steps_here = 0;
            }
            _ => break,
        }
    }
    let finished = world.job.status.is_finished();
    Ok(Simulation {
        events: world.events,
        status: world.job.status,
        finished,
        end: now,
    })
}

/// Every container a rule names must exist in the pod template.
fn check_rules(rules: &[PodRule], template: &Template) -> Result<(), SimulateError> {
    for (i, rule) in rules.iter().enumerate() {
        for name in rule.exit_codes.keys() {
            let known = template.app.iter().any(|c| c == name)
                || template.init.iter().any(|(c, _)| c == name);
            if !known {
                let mut names: Vec<&str> = template.app.iter().map(String::as_str).collect();
                names.extend(template.init.iter().map(|(c, _)| c.as_str()));
                return Err(SimulateError::InvalidRule {
                    rule: i,
                    message: format!(
                        "exitCodes names container {name:?}, which the pod template does not have (it has: {})",
                        names.join(", ")
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The crash-loop back-off before restart number `n` (1-based).
fn crash_loop_delay(n: u32) -> Duration {
    let exponent = n.saturating_sub(1).min(16);
    CRASH_LOOP_BASE
        .checked_mul(1 << exponent)
        .unwrap_or(CRASH_LOOP_CAP)
        .min(CRASH_LOOP_CAP)
}

impl World<'_> {
    fn emit(&mut self, t: Timestamp, kind: SimEventKind) {
        self.events.push(SimEvent { t, kind });
    }

    /// Ends, restarts and kills every pod due at or before `now`, in creation order.
    fn apply_due_changes(&mut self, now: Timestamp) {
        let mut any = false;
        for i in 0..self.sims.len() {
            let sim = &self.sims[i];
            let Some(at) = sim.next_at() else { continue };
            if at > now {
                continue;
            }
            // The earliest of the three; a natural end wins a tie with a kill.
            let change = if sim.end_at == Some(at) {
                Change::End
            } else if sim.restart_at == Some(at) {
                Change::Restart
            } else {
                Change::Kill
            };
            match change {
                Change::End => self.end_run(i, at),
                Change::Restart => {
                    let run_for = self.rule(i).map_or_else(Duration::zero, |r| r.run_for);
                    let sim = &mut self.sims[i];
                    sim.restart_at = None;
                    sim.end_at = at.checked_add_signed(run_for);
                    let pod = &mut self.observed[i];
                    pod.ready = true;
                    pod.ready_since = Some(at);
                }
                Change::Kill => self.kill(i, at),
            }
            any = true;
        }
        if any {
            self.forget_counted_terminal_pods();
        }
    }

    fn rule(&self, i: usize) -> Option<&PodRule> {
        self.sims[i].rule.and_then(|r| self.rules.get(r))
    }

    /// The end of a pod's run, as its rule says.
    fn end_run(&mut self, i: usize, at: Timestamp) {
        let rule = self.rule(i).cloned().unwrap_or_default();
        let has_code = !rule.evicted
            && (rule.exit_code.is_some()
                || !rule.exit_codes.is_empty()
                || rule.conditions.is_empty());
        // Exit codes: listed init containers, then app containers (which never ran when a
        // regular init container failed).
        let init_codes: Vec<(usize, i32)> = if has_code {
            self.template
                .init
                .iter()
                .enumerate()
                .filter_map(|(k, (name, _))| rule.exit_codes.get(name).map(|c| (k, *c)))
                .collect()
        } else {
            Vec::new()
        };
        let init_failed = init_codes
            .iter()
            .any(|(k, c)| *c != 0 && !self.template.init[*k].1);
        let app_codes: Vec<Option<i32>> = self
            .template
            .app
            .iter()
            .map(|name| {
                (has_code && !init_failed).then(|| {
                    rule.exit_code
                        .or_else(|| rule.exit_codes.get(name).copied())
                        .unwrap_or(0)
                })
            })
            .collect();
        let first_failure = app_codes
            .iter()
            .flatten()
            .copied()
            .chain(init_codes.iter().map(|(_, c)| *c))
            .find(|c| *c != 0);
        let failed_by_code = app_codes.iter().flatten().any(|c| *c != 0) || init_failed;
        let name = self.observed[i].name.clone();
        let app_count = self.template.app.len();

        // restartPolicy OnFailure: failing containers restart inside the pod.
        if self.template.on_failure && has_code && failed_by_code && !self.observed[i].deleting {
            self.emit(
                at,
                SimEventKind::Exit {
                    pod: name,
                    exit_code: first_failure.unwrap_or(0),
                },
            );
            let pod = &mut self.observed[i];
            for (k, code) in app_codes.iter().enumerate() {
                if code.is_some_and(|c| c != 0)
                    && let Some(c) = pod.containers.get_mut(k)
                {
                    c.restarts = c.restarts.saturating_add(1);
                }
            }
            for (k, code) in &init_codes {
                if *code != 0
                    && let Some(c) = pod.containers.get_mut(app_count + k)
                {
                    c.restarts = c.restarts.saturating_add(1);
                }
            }
            pod.ready = false;
            pod.ready_since = None;
            let sim = &mut self.sims[i];
            sim.restarts = sim.restarts.saturating_add(1);
            sim.end_at = None;
            sim.restart_at = at.checked_add_signed(crash_loop_delay(sim.restarts));
            return;
        }

        let pod = &mut self.observed[i];
        let fails = !has_code || failed_by_code;
        pod.phase = if fails {
            PodPhase::Failed
        } else {
            PodPhase::Succeeded
        };
        pod.ready = false;
        pod.finished_at = Some(at);
        for (k, code) in app_codes.iter().enumerate() {
            if let Some(c) = pod.containers.get_mut(k) {
                c.exit_code = *code;
                c.finished_at = Some(at);
            }
        }
        for (k, code) in &init_codes {
            if let Some(c) = pod.containers.get_mut(app_count + k) {
                c.exit_code = Some(*code);
                c.finished_at = Some(at);
            }
        }
        if rule.evicted {
            pod.conditions.push(PodCondition {
                type_: "DisruptionTarget".to_owned(),
                status: ConditionStatus::True,
                reason: "EvictionByEvictionAPI".to_owned(),
                last_transition_time: Some(at),
            });
        }
        for c in &rule.conditions {
            pod.conditions.push(PodCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                last_transition_time: Some(at),
            });
        }
        let sim = &mut self.sims[i];
        sim.end_at = None;
        sim.restart_at = None;
        sim.kill_at = None;
        let kind = if has_code {
            SimEventKind::Exit {
                pod: name,
                exit_code: first_failure.unwrap_or(0),
            }
        } else {
            SimEventKind::Evict { pod: name }
        };
        self.emit(at, kind);
    }

    /// The grace period (or the pod deadline) ran out: every running container is killed.
    fn kill(&mut self, i: usize, at: Timestamp) {
        let pod = &mut self.observed[i];
        pod.phase = PodPhase::Failed;
        pod.ready = false;
        pod.finished_at = Some(at);
        let app_count = self.template.app.len();
        for c in pod.containers.iter_mut().take(app_count) {
            if c.exit_code.is_none() {
                c.exit_code = Some(KILLED_EXIT_CODE);
            }
            c.finished_at = Some(at);
        }
        let name = pod.name.clone();
        let sim = &mut self.sims[i];
        sim.end_at = None;
        sim.restart_at = None;
        sim.kill_at = None;
        self.emit(
            at,
            SimEventKind::Exit {
                pod: name,
                exit_code: KILLED_EXIT_CODE,
            },
        );
    }

    /// Applies one decision; returns whether it changed anything.
    fn apply(&mut self, d: JobDecision, now: Timestamp) -> bool {
        // Memory alone does not count: the machine may recount a failed pod whose release
        // it delays (per-index back-off) at every step, and that needs no further step.
        let changed = !d.create.is_empty()
            || !d.delete.is_empty()
            || !d.release.is_empty()
            || d.status != self.job.status;
        if !d.delete.is_empty() || !d.release.is_empty() {
            let position: HashMap<String, usize> = self
                .observed
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name.clone(), i))
                .collect();
            for name in &d.delete {
                self.emit(now, SimEventKind::Delete { pod: name.clone() });
                if let Some(&i) = position.get(name) {
                    self.delete(i, now);
                }
            }
            for name in &d.release {
                if let Some(&i) = position.get(name) {
                    self.observed[i].counted = true;
                }
            }
        }
        for create in &d.create {
            self.emit(
                now,
                SimEventKind::Create {
                    pod: create.name.clone(),
                    index: create.index,
                },
            );
            self.create(
                create.name.clone(),
                create.index,
                create.annotations.clone(),
                now,
            );
        }
        for c in &d.status.conditions {
            let old = self.job.status.condition(&c.type_);
            let differs = old.is_none_or(|o| {
                o.status != c.status || o.reason != c.reason || o.message != c.message
            });
            if differs {
                self.emit(
                    now,
                    SimEventKind::Condition {
                        type_: c.type_.clone(),
                        reason: c.reason.clone(),
                    },
                );
            }
        }
        for e in &d.events {
            if e.type_ == EventType::Warning {
                self.emit(
                    now,
                    SimEventKind::Warning {
                        reason: e.reason.clone(),
                        message: e.message.clone(),
                    },
                );
            }
        }
        self.job.status = d.status;
        self.memory = d.memory;
        if !d.release.is_empty() {
            self.forget_counted_terminal_pods();
        }
        changed
    }

    fn delete(&mut self, i: usize, now: Timestamp) {
        let pod = &mut self.observed[i];
        if pod.phase.is_terminal() || pod.deleting {
            pod.deleting = true;
            return;
        }
        pod.deleting = true;
        pod.deletion_time = Some(now);
        let sim = &mut self.sims[i];
        let grace_end = if sim.restart_at.is_some() {
            // Nothing is running (crash-loop back-off): the pod goes at once.
            sim.restart_at = None;
            now
        } else {
            now.checked_add_signed(self.template.grace).unwrap_or(now)
        };
        sim.kill_at = Some(sim.kill_at.map_or(grace_end, |k| k.min(grace_end)));
    }

    fn create(
        &mut self,
        name: String,
        index: Option<i32>,
        annotations: std::collections::BTreeMap<String, String>,
        now: Timestamp,
    ) {
        let ordinal = self.ordinal;
        self.ordinal += 1;
        let attempt = match index {
            Some(ix) => {
                let n = self.attempts.entry(ix).or_insert(0);
                let attempt = *n;
                *n = n.saturating_add(1);
                attempt
            }
            None => u32::try_from(ordinal).unwrap_or(u32::MAX),
        };
        let rule = self
            .rules
            .iter()
            .position(|r| r.matcher.matches(index, attempt, ordinal));
        let run_for = rule
            .and_then(|r| self.rules.get(r))
            .map_or_else(Duration::zero, |r| r.run_for);
        let mut containers: Vec<ContainerState> = self
            .template
            .app
            .iter()
            .map(|c| ContainerState {
                name: c.clone(),
                ..ContainerState::default()
            })
            .collect();
        containers.extend(
            self.template
                .init
                .iter()
                .map(|(c, sidecar)| ContainerState {
                    name: c.clone(),
                    init: true,
                    // Regular init containers have completed by the time the pod runs.
                    exit_code: (!sidecar).then_some(0),
                    finished_at: (!sidecar).then_some(now),
                    restarts: 0,
                }),
        );
        self.observed.push(ObservedPod {
            name,
            phase: PodPhase::Running,
            index: index.map(|ix| ix.to_string()),
            annotations,
            ready: true,
            ready_since: Some(now),
            scheduled: Some(true),
            created_at: Some(now),
            containers,
            ..ObservedPod::default()
        });
        self.sims.push(SimPod {
            rule,
            end_at: now.checked_add_signed(run_for),
            restart_at: None,
            kill_at: self
                .template
                .pod_deadline
                .and_then(|d| now.checked_add_signed(d)),
            restarts: 0,
        });
    }

    /// Pods whose outcome is counted and that have ended are freed (the runner's release).
    fn forget_counted_terminal_pods(&mut self) {
        if !self
            .observed
            .iter()
            .any(|p| p.counted && p.phase.is_terminal())
        {
            return;
        }
        let observed = std::mem::take(&mut self.observed);
        let sims = std::mem::take(&mut self.sims);
        for (pod, sim) in observed.into_iter().zip(sims) {
            if !(pod.counted && pod.phase.is_terminal()) {
                self.observed.push(pod);
                self.sims.push(sim);
            }
        }
    }
}
