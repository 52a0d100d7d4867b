//! Provenance of sweep records: the driver process's (it runs no model, see
//! [`crate::provenance::without_runtime`]), plus the Slurm job and array task when one ran it.

use reports::schema::Provenance;

pub fn current() -> Provenance {
    let mut p = crate::provenance::without_runtime();
    for (var, key) in [
        ("SLURM_JOB_ID", "slurm_job_id"),
        ("SLURM_ARRAY_TASK_ID", "slurm_array_task_id"),
    ] {
        if let Ok(v) = std::env::var(var) {
            p.extra.insert(key.into(), v.into());
        }
    }
    p
}
