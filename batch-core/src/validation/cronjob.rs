//! CronJob validation (filled in by the validation work).
use super::ValidationErrors;
use crate::model::CronJob;

/// Validates a defaulted CronJob as the API server validates a create.
///
/// # Errors
///
/// Every problem found, as [`ValidationErrors`].
pub fn validate_cron_job(cron_job: &CronJob) -> Result<(), ValidationErrors> {
    let _ = cron_job;
    ValidationErrors::default().into_result()
}
