//! Bytes → `loader::load_bytes` → defaults → validation → JSON and YAML → load again.
//!
//! Fails (panics) when any step panics, when a loaded object cannot be written, or when
//! writing and loading it again does not give an equal object.
#![no_main]

use batch_core::loader;
use batch_core::model::Manifest;
use batch_core::{defaults, validation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(docs) = loader::load_bytes(data, "fuzz.yaml") else {
        return;
    };
    for doc in docs {
        let _ = doc.validate().to_string();
        let Some(object) = doc.object else {
            continue;
        };
        round_trip(&object);
        match object {
            Manifest::Job(mut job) => {
                defaults::prepare_job_for_create(&mut job, "fuzz-uid");
                if let Err(errors) = validation::validate_job(&job) {
                    let _ = errors.to_string();
                }
                round_trip(&Manifest::Job(job));
            }
            Manifest::CronJob(mut cron_job) => {
                defaults::default_cron_job(&mut cron_job);
                if let Err(errors) = validation::validate_cron_job(&cron_job) {
                    let _ = errors.to_string();
                }
                round_trip(&Manifest::CronJob(cron_job));
            }
            _ => {}
        }
    }
});

/// Writes the object as JSON and as YAML; each must load again as one equal object.
fn round_trip(object: &Manifest) {
    let json = serde_json::to_string(object).expect("a loaded object can be written as JSON");
    let yaml = serde_norway::to_string(object).expect("a loaded object can be written as YAML");
    for (form, text) in [("JSON", json), ("YAML", yaml)] {
        let docs = loader::load_str(&text, "written")
            .unwrap_or_else(|e| panic!("the written {form} does not load: {e}\n{text}"));
        assert_eq!(docs.len(), 1, "{form}:\n{text}");
        assert_eq!(
            docs[0].object.as_ref(),
            Some(object),
            "the {form} round trip changed the object:\n{text}"
        );
    }
}
