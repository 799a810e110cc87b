//! The CronJob simulation loop: the real CronJob machine, black-box child Jobs, a virtual
//! clock.

use super::{
    CronJobSimulation, CronJobSimulationInput, JobResult, JobRule, MAX_STEPS_PER_INSTANT,
    SIMULATED_UID, SimEvent, SimEventKind, SimulateError,
};
use crate::cronjob::{ChildJob, ChildJobResult, CronJobDecision, CronJobOptions, reconcile};
use crate::job::EventType;
use crate::model::{CronJob, Timestamp};

/// The simulator's side of a child Job: when it ends and how.
struct SimChild {
    /// When it ends (`None` once it has ended).
    end_at: Option<Timestamp>,
    result: JobResult,
}

struct World<'a> {
    rules: &'a [JobRule],
    cron_job: CronJob,
    /// The child Jobs that exist, in creation order, as the machine sees them; `sims` runs
    /// alongside.
    children: Vec<ChildJob>,
    sims: Vec<SimChild>,
    /// Jobs created so far.
    ordinal: u64,
    events: Vec<SimEvent>,
}

pub(super) fn run(input: &CronJobSimulationInput) -> Result<CronJobSimulation, SimulateError> {
    let mut cron_job = input.cron_job.clone();
    crate::defaults::default_cron_job(&mut cron_job);
    if cron_job.metadata.uid.is_none() {
        cron_job.metadata.uid = Some(SIMULATED_UID.to_owned());
    }
    if cron_job.metadata.creation_timestamp.is_none() {
        cron_job.metadata.creation_timestamp = Some(input.start);
    }
    crate::validation::validate_cron_job(&cron_job).map_err(SimulateError::InvalidCronJob)?;
    let horizon = super::horizon(input.start, input.until)?;
    let options = CronJobOptions::new().with_dst(input.dst);

    let mut world = World {
        rules: &input.jobs,
        cron_job,
        children: Vec::new(),
        sims: Vec::new(),
        ordinal: 0,
        events: Vec::new(),
    };
    let mut now = input.start;
    let mut steps_here = 0usize;
    loop {
        world.finish_due_jobs(now);
        let decision = reconcile(&world.cron_job, &world.children, now, &options);
        steps_here += 1;
        let requeue_at = decision.requeue_at;
        let changed = world.apply(decision, now);
        if changed || world.next_end().is_some_and(|t| t <= now) {
            if steps_here >= MAX_STEPS_PER_INSTANT {
                return Err(SimulateError::Stalled { at: now });
            }
            continue;
        }
        let next = world
            .next_end()
            .into_iter()
            .chain(requeue_at.filter(|t| *t > now))
            .min();
        match next {
            Some(t) if t <= horizon => {
                now = t;
                steps_here = 0;
            }
            _ => break,
        }
    }
    Ok(CronJobSimulation {
        events: world.events,
        status: world.cron_job.status,
        jobs_created: world.ordinal,
        end: now,
    })
}

impl World<'_> {
    fn emit(&mut self, t: Timestamp, kind: SimEventKind) {
        self.events.push(SimEvent { t, kind });
    }

    /// When the next running child Job ends.
    fn next_end(&self) -> Option<Timestamp> {
        self.sims.iter().filter_map(|s| s.end_at).min()
    }

    /// Ends every child Job due at or before `now`, in creation order.
    fn finish_due_jobs(&mut self, now: Timestamp) {
        for i in 0..self.sims.len() {
            let Some(at) = self.sims[i].end_at.filter(|t| *t <= now) else {
                continue;
            };
            let result = self.sims[i].result;
            self.sims[i].end_at = None;
            let child = &mut self.children[i];
            child.finished = Some(match result {
                JobResult::Complete => ChildJobResult::Complete,
                JobResult::Failed => ChildJobResult::Failed,
            });
            child.completion_time = Some(at);
            let job = child.name.clone();
            self.emit(at, SimEventKind::JobFinish { job, result });
        }
    }

    /// Applies one decision; returns whether it changed anything.
    fn apply(&mut self, d: CronJobDecision, now: Timestamp) -> bool {
        let mut changed = d.status != self.cron_job.status;
        for name in &d.delete {
            // A deleted Job is gone at once, running or not (its pods are not simulated).
            if let Some(i) = self.children.iter().position(|c| &c.name == name) {
                self.children.remove(i);
                self.sims.remove(i);
                self.emit(now, SimEventKind::JobDelete { job: name.clone() });
                changed = true;
            }
        }
        let create = d.create.map(|job| job.metadata.name.unwrap_or_default());
        // A Job of that name already exists: the API server refuses the create
        // (AlreadyExists). The machine is meant never to ask for it.
        if let Some(name) = create.filter(|n| !self.children.iter().any(|c| &c.name == n)) {
            self.emit(
                now,
                SimEventKind::JobCreate {
                    job: name.clone(),
                    scheduled_time: d.scheduled_time,
                },
            );
            self.create(name, d.scheduled_time, now);
            changed = true;
        }
        for e in d.events {
            if e.type_ == EventType::Warning {
                self.emit(
                    now,
                    SimEventKind::Warning {
                        reason: e.reason,
                        message: e.message,
                    },
                );
            }
        }
        self.cron_job.status = d.status;
        changed
    }

    /// A created Job starts at once and ends as its rule says (a Job no rule matches
    /// completes at once).
    fn create(&mut self, name: String, scheduled_time: Option<Timestamp>, now: Timestamp) {
        let ordinal = self.ordinal;
        self.ordinal += 1;
        let rule = self.rules.iter().find(|r| r.matcher.matches(ordinal));
        let (run_for, result) = rule.map_or((chrono::Duration::zero(), JobResult::Complete), |r| {
            (r.run_for, r.result)
        });
        self.children.push(ChildJob {
            name,
            scheduled_time,
            created_at: Some(now),
            start_time: Some(now),
            finished: None,
            completion_time: None,
        });
        self.sims.push(SimChild {
            end_at: Some(now.checked_add_signed(run_for).unwrap_or(now)),
            result,
        });
    }
}
