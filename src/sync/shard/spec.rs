//! Which shard this process is: `--shard K/N`, or `auto` from the batch
//! engine's environment.

use super::ShardId;

/// `--shard`: given, or from the batch engine's environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardSpec {
    Given(ShardId),
    Auto,
}

/// Parses `K/N` (1 ≤ K ≤ N) or `auto`.
pub fn parse_shard(text: &str) -> Result<ShardSpec, String> {
    if text.trim().eq_ignore_ascii_case("auto") {
        return Ok(ShardSpec::Auto);
    }
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}`: expected K/N (shard K of N, from 1) or auto"))?;
    let parse = |part: &str| {
        part.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{text}`: expected K/N with whole numbers, e.g. 2/8"))
    };
    let (index, count) = (parse(k)?, parse(n)?);
    if count == 0 || index == 0 || index > count {
        return Err(format!(
            "`{text}`: K must be 1 to N (shards count from 1; N is at least 1)"
        ));
    }
    Ok(ShardSpec::Given(ShardId { index, count }))
}

/// K and N from the environment of Kubernetes Indexed Jobs, Slurm job
/// arrays or AWS Batch array jobs; engines that number from 0 are shifted.
pub fn shard_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<ShardId, String> {
    let number = |name: &str| -> Result<Option<u32>, String> {
        match env(name) {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}={text} is not a whole number")),
        }
    };
    let engines: [(&str, &str, &str, u32); 3] = [
        (
            "JOB_COMPLETION_INDEX",
            "JOB_COMPLETIONS",
            "set JOB_COMPLETIONS to the Job's spec.completions in its pod template (deploy/kubernetes-job.yaml does)",
            0,
        ),
        (
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_COUNT",
            "submit with sbatch --array (Slurm sets it)",
            0,
        ),
        (
            "AWS_BATCH_JOB_ARRAY_INDEX",
            "AWS_BATCH_JOB_ARRAY_SIZE",
            "set AWS_BATCH_JOB_ARRAY_SIZE to the array size in the job's environment (deploy/aws-batch-submit.sh does)",
            0,
        ),
    ];
    for (index_var, count_var, how, _) in engines {
        let Some(index) = number(index_var)? else {
            continue;
        };
        let count = number(count_var)?
            .ok_or_else(|| format!("{index_var} is set but {count_var} is not: {how}"))?;
        // Slurm numbers tasks as the --array range says (0-3, 1-4, …).
        let first = if index_var == "SLURM_ARRAY_TASK_ID" {
            number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0)
        } else {
            0
        };
        let k = index
            .checked_sub(first)
            .map(|k| k + 1)
            .filter(|k| *k <= count && count > 0)
            .ok_or_else(|| {
                format!("{index_var}={index} is outside an array of {count} ({count_var})")
            })?;
        return Ok(ShardId { index: k, count });
    }
    Err("--shard auto: no batch engine's array index is set (JOB_COMPLETION_INDEX for Kubernetes, \
         SLURM_ARRAY_TASK_ID for Slurm, AWS_BATCH_JOB_ARRAY_INDEX for AWS Batch); give --shard K/N instead"
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_shard("2/8"),
            Ok(ShardSpec::Given(ShardId { index: 2, count: 8 }))
        );
        assert_eq!(parse_shard("auto"), Ok(ShardSpec::Auto));
        for bad in ["0/4", "5/4", "1/0", "x/4", "3"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_engine_names_its_shard() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let k8s = env(&[("JOB_COMPLETION_INDEX", "0"), ("JOB_COMPLETIONS", "4")]);
        assert_eq!(shard_from_env(&k8s), Ok(ShardId { index: 1, count: 4 }));
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]);
        assert_eq!(shard_from_env(&slurm), Ok(ShardId { index: 4, count: 4 }));
        let batch = env(&[
            ("AWS_BATCH_JOB_ARRAY_INDEX", "2"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "3"),
        ]);
        assert_eq!(shard_from_env(&batch), Ok(ShardId { index: 3, count: 3 }));
        let half = env(&[("JOB_COMPLETION_INDEX", "1")]);
        assert!(
            shard_from_env(&half)
                .unwrap_err()
                .contains("JOB_COMPLETIONS")
        );
        let none = env(&[]);
        assert!(shard_from_env(&none).unwrap_err().contains("--shard K/N"));
        let outside = env(&[("JOB_COMPLETION_INDEX", "4"), ("JOB_COMPLETIONS", "4")]);
        assert!(shard_from_env(&outside).is_err());
    }
}
