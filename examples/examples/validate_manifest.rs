//! Shows how to embed batch-core's manifest checks in your own program: load a manifest
//! file, apply the API server's defaults, validate, and print each problem with its field
//! path.
//!
//! Run: `cargo run -p batch-examples --example validate_manifest -- examples/manifests/hello-job.yaml`

use anyhow::Context;
use batch_core::{defaults, loader, model::Manifest, validation};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/manifests/hello-job.yaml".to_owned());
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
    let docs = loader::load_bytes(&bytes, &path)?;
    for doc in docs {
        // Problems found while loading (an unsupported kind or apiVersion) come first.
        let mut errors = doc.problems.clone();
        let result = match doc.object {
            Some(Manifest::Job(mut job)) => {
                // The API server assigns a UID on create; we pass one in.
                defaults::prepare_job_for_create(&mut job, "example-uid");
                println!(
                    "Job {}: completions={:?} parallelism={:?} backoffLimit={:?}",
                    job.name(),
                    job.spec.completions,
                    job.spec.parallelism,
                    job.spec.backoff_limit
                );
                validation::validate_job(&job)
            }
            Some(Manifest::CronJob(mut cron_job)) => {
                defaults::default_cron_job(&mut cron_job);
                println!(
                    "CronJob {}: schedule {:?}, concurrencyPolicy {}",
                    cron_job.name(),
                    cron_job.spec.schedule,
                    cron_job.spec.concurrency_policy
                );
                validation::validate_cron_job(&cron_job)
            }
            _ => Ok(()),
        };
        if let Err(more) = result {
            errors.0.extend(more.0);
        }
        if errors.is_empty() {
            println!("{} {:?}: valid", doc.kind, doc.name.unwrap_or_default());
        }
        for error in &errors {
            println!("  {error}");
        }
    }
    Ok(())
}
