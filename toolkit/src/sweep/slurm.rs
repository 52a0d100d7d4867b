//! `--emit slurm`: an sbatch job-array script whose task i runs `ratio sweep … --shard i/n` on the same run
//! directory. Shared steps are serialised by the run directory's step locks, so tasks can start together.

use std::path::Path;

/// Single-quote for POSIX sh.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub struct SlurmJob<'a> {
    pub program: &'a Path,
    /// `sweep …` arguments without any `--shard`.
    pub sweep_args: &'a [String],
    pub run_dir: &'a Path,
    pub tasks: usize,
    pub job_name: String,
    pub cpus_per_task: usize,
    /// Extra `#SBATCH` options, e.g. `--partition=gpu`, `--gres=gpu:1`, `--time=04:00:00`.
    pub extra: &'a [String],
}

pub fn script(job: &SlurmJob) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name={}\n", job.job_name));
    s.push_str(&format!("#SBATCH --array=0-{}\n", job.tasks.saturating_sub(1)));
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", job.cpus_per_task));
    s.push_str(&format!("#SBATCH --output={}/slurm/%A_%a.out\n", job.run_dir.display()));
    for e in job.extra {
        s.push_str(&format!("#SBATCH {e}\n"));
    }
    s.push_str(
        "# Written by `ratio sweep --emit slurm`. Each array task runs one shard of the same sweep; when all are\n",
    );
    s.push_str(&format!(
        "# done, merge with: {} report {}\n",
        sh_quote(&job.program.to_string_lossy()),
        sh_quote(&job.run_dir.to_string_lossy())
    ));
    s.push_str("set -euo pipefail\n");
    if let Some(abs) = std::env::var("ORT_DYLIB_PATH")
        .ok()
        .and_then(|o| std::path::absolute(o).ok())
    {
        s.push_str(&format!(
            "export ORT_DYLIB_PATH=${{ORT_DYLIB_PATH:-{}}}\n",
            sh_quote(&abs.to_string_lossy())
        ));
    }
    let mut cmd = vec![sh_quote(&job.program.to_string_lossy())];
    cmd.extend(job.sweep_args.iter().map(|a| sh_quote(a)));
    s.push_str(&format!(
        "exec {} --shard \"${{SLURM_ARRAY_TASK_ID}}/{}\"\n",
        cmd.join(" "),
        job.tasks
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_runs_one_shard_per_array_task() {
        let args = vec!["sweep".to_string(), "--model".into(), "my model.onnx".into()];
        let extra = vec!["--time=01:00:00".to_string()];
        let s = script(&SlurmJob {
            program: Path::new("/opt/ratio"),
            sweep_args: &args,
            run_dir: Path::new("/runs/a"),
            tasks: 4,
            job_name: "ratio-x".into(),
            cpus_per_task: 2,
            extra: &extra,
        });
        assert!(
            s.starts_with("#!/bin/bash\n#SBATCH --job-name=ratio-x\n#SBATCH --array=0-3\n"),
            "{s}"
        );
        assert!(s.contains("#SBATCH --time=01:00:00\n"));
        assert!(
            s.contains("exec /opt/ratio sweep --model 'my model.onnx' --shard \"${SLURM_ARRAY_TASK_ID}/4\"\n"),
            "{s}"
        );
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }
}
