//! The scheduler templates in `deploy/`, run the way their schedulers run
//! them: every task or pod with its index in the environment (Slurm's
//! `SLURM_ARRAY_TASK_ID`, Kubernetes' `$(JOB_COMPLETION_INDEX)` expansion),
//! against a folder of cuts. Together they must colour every cut exactly
//! once, whatever the template's size.

use std::path::Path;
use std::process::Command;

use crate::util::*;

fn repo(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

/// Three small cuts under `d/cuts`.
fn cuts(d: &Path) {
    for (name, seed) in [("a", "1"), ("b", "2"), ("c", "3")] {
        dacon(
            d,
            &[
                "example",
                "--out",
                &format!("cuts/{name}"),
                "--frames",
                "2",
                "--width",
                "160",
                "--height",
                "120",
                "--line-width",
                "2",
                "--seed",
                seed,
            ],
        )
        .ok();
    }
}

/// The cuts each manifest under `out` was given; every cut exactly once.
fn check_coverage(out: &Path, shards: usize) {
    let mut assigned = Vec::new();
    for i in 0..shards {
        let p = out.join(format!("manifest-{i}-of-{shards}.json"));
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(m["complete"], true, "{}", p.display());
        for c in m["assigned"].as_array().unwrap() {
            assigned.push(c.as_str().unwrap().to_string());
        }
    }
    assigned.sort();
    assert_eq!(assigned, ["a", "b", "c"]);
    for c in ["a", "b", "c"] {
        assert!(
            out.join(c).join("0001.png").is_file(),
            "cut {c} not coloured"
        );
    }
}

/// The value after `key` on a line of `text`.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key}"))
        .trim()
}

#[test]
fn slurm_array_colours_every_cut_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    cuts(d);
    let script = repo("deploy/slurm/colorize-array.sbatch");
    let text = std::fs::read_to_string(&script).unwrap();
    let (first, last) = field(&text, "#SBATCH --array=").split_once('-').unwrap();
    let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
    let n = last - first + 1;
    for i in first..=last {
        let out = Command::new("bash")
            .arg(&script)
            .current_dir(d)
            .env("SLURM_ARRAY_TASK_ID", i.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", n.to_string())
            .env("SLURM_CPUS_PER_TASK", "1")
            .env("CUTS", "cuts")
            .env("OUT", "pred")
            .env("DACON", env!("CARGO_BIN_EXE_dacon"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "task {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    check_coverage(&d.join("pred"), n);
}

#[test]
fn kubernetes_indexed_job_colours_every_cut_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    cuts(d);
    let text =
        std::fs::read_to_string(repo("deploy/kubernetes/colorize-indexed-job.yaml")).unwrap();
    assert_eq!(field(&text, "completionMode:"), "Indexed");
    let n: usize = field(&text, "completions:").parse().unwrap();
    assert_eq!(field(&text, "parallelism:"), n.to_string());
    // The container's args, as listed under `args:`.
    let args: Vec<String> = text
        .lines()
        .skip_while(|l| l.trim() != "args:")
        .skip(1)
        .map_while(|l| l.trim().strip_prefix("- "))
        .map(|a| a.trim_matches('"').to_string())
        .collect();
    let shard = args.iter().position(|a| a == "--shard").unwrap();
    assert_eq!(args[shard + 1], format!("$(JOB_COMPLETION_INDEX)/{n}"));
    for i in 0..n {
        // What the kubelet runs: $(VAR) expanded, the data volume at /data
        // (here the test folder).
        let run: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("$(JOB_COMPLETION_INDEX)", &i.to_string())
                    .replace("/data/", "")
            })
            .collect();
        let run: Vec<&str> = run.iter().map(String::as_str).collect();
        dacon(d, &run).ok();
    }
    check_coverage(&d.join("pred"), n);
}
