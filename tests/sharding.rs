//! A saved plan run as four shard processes started at once, then finalized
//! (`apply --shard K/N`, `finalize`): local → local and local → S3 (moto).
//! The destination must equal what one `sync` makes, every item must be done
//! exactly once (by the reports), nothing may be deleted before finalize, and
//! finalize must refuse while a shard's report is missing.

mod util;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;

use util::s3::Bucket;
use util::{Scratch, local, noise, stderr_of, stdout_of, tree};

const MIB: usize = 1024 * 1024;

/// Many small files in a few directories and one file far past a shard's
/// fair share (cut into pieces across the shards).
fn make_source(s: &Scratch, root: &str) {
    for i in 0..120 {
        s.write(
            &format!("{root}/d{}/f{i:03}.bin", i % 6),
            &noise(500 + i * 37, i as u64),
        );
    }
    s.write(
        &format!("{root}/big/image.raw"),
        &noise(200 * MIB + 12_345, 77),
    );
}

/// Files the source lacks, for --delete.
fn make_extras(s: &Scratch, root: &str) {
    s.write(&format!("{root}/old/gone.txt"), b"to delete");
    s.write(&format!("{root}/stale.txt"), b"to delete too");
}

/// `plan FLAGS --shards N -o PLAN SRC DST EXTRA`, which must succeed.
fn plan_for_shards(
    s: &Scratch,
    shards: u32,
    flags: &[&str],
    [src, dst]: [&str; 2],
    extra: &[String],
    plan: &Path,
) -> std::process::Output {
    let out = s
        .cmd()
        .arg("plan")
        .args(flags)
        .args(["--shards", &shards.to_string(), "-o"])
        .arg(plan)
        .args([src, dst])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    out
}

fn spawn_shards(s: &Scratch, plan: &Path, extra: &[String]) -> Vec<Child> {
    (1..=4)
        .map(|k| {
            s.std_cmd()
                .args(["apply", "--yes"])
                .arg(plan)
                .args(["--shard", &format!("{k}/4")])
                .args(extra)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect()
}

fn wait_all(children: Vec<Child>) {
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a shard failed: {}", stderr_of(&out));
    }
}

/// Every report's done items and pieces: each item exactly once, across
/// shards; returns (items, pieces).
fn done_exactly_once(reports: &[serde_json::Value]) -> (usize, usize) {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut pieces: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    for report in reports {
        assert_eq!(report["complete"], true, "{report}");
        assert!(report["failed"].as_array().unwrap().is_empty(), "{report}");
        for range in report["done"].as_array().unwrap() {
            for item in range[0].as_u64().unwrap()..range[1].as_u64().unwrap() {
                *seen.entry(item).or_default() += 1;
            }
        }
        for piece in report["pieces_done"].as_array().unwrap() {
            let key = (piece[0].as_u64().unwrap(), piece[1].as_u64().unwrap());
            *pieces.entry(key).or_default() += 1;
        }
    }
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert!(pieces.values().all(|&n| n == 1), "{pieces:?}");
    (seen.len(), pieces.len())
}

#[test]
fn four_shards_and_finalize_make_what_one_sync_makes_on_a_disk() {
    let s = Scratch::new();
    make_source(&s, "src");
    make_extras(&s, "dst");
    make_extras(&s, "single");
    let plan = s.path("plan");
    let (src, dst) = (local(&s.src()), local(&s.dst()));
    plan_for_shards(&s, 4, &["--delete"], [&src, &dst], &[], &plan);

    // Nothing to finalize yet: refused, naming the shards it waits for.
    let early = s.cmd().arg("finalize").arg(&plan).output().unwrap();
    assert_eq!(early.status.code(), Some(2), "{}", stderr_of(&early));
    assert!(
        stderr_of(&early).contains("no shard report"),
        "{}",
        stderr_of(&early)
    );

    // A shard changes the destination too: refused without --yes when
    // nobody can be asked, before anything is sent.
    let unasked = s
        .cmd()
        .args(["apply", "--shard", "1/4"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(unasked.status.code(), Some(2), "{}", stderr_of(&unasked));
    assert!(stderr_of(&unasked).contains("pass --yes"));
    assert!(!s.path("plan/shard-1-of-4.json").exists());

    wait_all(spawn_shards(&s, &plan, &[]));
    // The shards delete nothing, and the cut file is not under its name yet.
    assert!(s.path("dst/old/gone.txt").exists());
    assert!(s.path("dst/stale.txt").exists());
    assert!(!s.path("dst/big/image.raw").exists());
    let report_of = |k: u32| s.path(&format!("plan/shard-{k}-of-4.json"));
    let reports: Vec<serde_json::Value> = (1..=4)
        .map(|k| serde_json::from_slice(&std::fs::read(report_of(k)).unwrap()).unwrap())
        .collect();
    let (items, pieces) = done_exactly_once(&reports);
    assert_eq!(items, 127, "every small file and directory once");
    assert!(
        pieces >= 4,
        "200 MiB cut across the shards: {pieces} pieces"
    );

    // A missing report: refused, naming the shard.
    let kept = std::fs::read(report_of(3)).unwrap();
    std::fs::remove_file(report_of(3)).unwrap();
    let refused = s.cmd().arg("finalize").arg(&plan).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr_of(&refused).contains("shard(s) 3/4"),
        "{}",
        stderr_of(&refused)
    );
    assert!(
        s.path("dst/stale.txt").exists(),
        "nothing deleted by a refusal"
    );
    std::fs::write(report_of(3), kept).unwrap();

    // A re-run of a shard finds its work done and sends nothing.
    let again = s
        .cmd()
        .args(["apply", "--json", "--shard", "2/4"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr_of(&again));
    let line: serde_json::Value = stdout_of(&again)
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap();
    assert_eq!(
        line["report"]["bytes_sent"], reports[1]["bytes_sent"],
        "{line}"
    );

    // Finalize changes the destination: without a terminal to ask on, it
    // refuses unless --yes, and changes nothing.
    let unasked = s.cmd().arg("finalize").arg(&plan).output().unwrap();
    assert_eq!(unasked.status.code(), Some(2), "{}", stderr_of(&unasked));
    assert!(
        stderr_of(&unasked).contains("pass --yes"),
        "{}",
        stderr_of(&unasked)
    );
    assert!(s.path("dst/stale.txt").exists() && !s.path("dst/big/image.raw").exists());

    let out = s
        .cmd()
        .args(["finalize", "-y"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("1 cut file(s) put together, 3 deleted"),
        "{}",
        stdout_of(&out)
    );

    // What one sync makes of the same trees.
    let single = s
        .cmd()
        .args(["sync", "--yes", "--delete", &src])
        .arg(s.path("single"))
        .output()
        .unwrap();
    assert!(single.status.success(), "{}", stderr_of(&single));
    assert_eq!(tree(&s.dst()), tree(&s.path("single")));
    assert_eq!(tree(&s.dst()), tree(&s.src()));
    assert!(util::temp_files(&s.dst()).is_empty());
}

#[test]
fn an_entry_changed_since_the_plan_is_refused_by_its_own_shard_only() {
    let s = Scratch::new();
    for i in 0..8 {
        s.write(&format!("src/f{i}"), &noise(1000, i));
    }
    let plan = s.path("plan");
    let out = plan_for_shards(&s, 2, &[], [&local(&s.src()), &local(&s.dst())], &[], &plan);
    // Each shard's share is printed with the plan.
    assert!(
        stdout_of(&out).contains("shard 2/2: 4 item(s)"),
        "{}",
        stdout_of(&out)
    );
    s.write("src/f3", b"changed since the plan");
    let outs: Vec<std::process::Output> = (1..=2)
        .map(|k| {
            s.cmd()
                .args(["apply", "--yes", "--shard", &format!("{k}/2")])
                .arg(&plan)
                .output()
                .unwrap()
        })
        .collect();
    // The shard that owns f3 refuses, naming it; its neighbour checks only
    // its own entries, does not see the change, and runs.
    let refused: Vec<&std::process::Output> =
        outs.iter().filter(|o| o.status.code() == Some(2)).collect();
    assert_eq!(
        refused.len(),
        1,
        "{:?}",
        outs.iter().map(stderr_of).collect::<Vec<_>>()
    );
    assert!(
        stderr_of(refused[0]).contains("f3"),
        "{}",
        stderr_of(refused[0])
    );
    let ran = outs.iter().find(|o| o.status.success()).unwrap();
    assert!(stdout_of(ran).contains("4 done"), "{}", stdout_of(ran));
    assert!(!s.path("dst/f3").exists());
    assert_eq!(tree(&s.dst()).len(), 4, "{:?}", tree(&s.dst()));
    // finalize waits for the shard that refused, and says why.
    let out = s
        .cmd()
        .args(["finalize", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("refused: 1 of its entries changed since the plan, first f3"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn finalize_refuses_a_deletion_whose_source_reappeared() {
    let s = Scratch::new();
    for i in 0..6 {
        s.write(&format!("src/f{i}"), &noise(1000, i));
    }
    s.write("dst/gone.txt", b"planned for deletion");
    let plan = s.path("plan");
    plan_for_shards(
        &s,
        2,
        &["--delete"],
        [&local(&s.src()), &local(&s.dst())],
        &[],
        &plan,
    );
    wait_all(
        (1..=2)
            .map(|k| {
                s.std_cmd()
                    .args(["apply", "--yes", "--shard", &format!("{k}/2")])
                    .arg(&plan)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    s.write("src/gone.txt", b"back again");
    let out = s
        .cmd()
        .args(["finalize", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("gone.txt"), "{}", stderr_of(&out));
    assert_eq!(
        std::fs::read(s.path("dst/gone.txt")).unwrap(),
        b"planned for deletion"
    );
    // Gone again: finalize deletes it.
    std::fs::remove_file(s.path("src/gone.txt")).unwrap();
    let out = s
        .cmd()
        .args(["finalize", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!s.path("dst/gone.txt").exists());
    assert_eq!(tree(&s.dst()), tree(&s.src()));
}

#[test]
fn four_shards_and_finalize_make_what_one_sync_makes_on_s3() {
    let (s, bucket) = (Scratch::new(), Bucket::new());
    make_source(&s, "src");
    bucket.put("d/old/gone.txt", b"to delete");
    bucket.put("d/stale.txt", b"to delete too");
    bucket.put("single/old/gone.txt", b"to delete");
    bucket.put("single/stale.txt", b"to delete too");
    let args: Vec<String> = bucket.args().to_vec();
    let plan = s.path("plan");
    let src = local(&s.src());
    plan_for_shards(&s, 4, &["--delete"], [&src, &bucket.url("d")], &args, &plan);
    // Reports on the store, where every worker of a cluster would reach them.
    let mut extra = args.clone();
    extra.extend(["--report-dir".to_string(), bucket.url("reports")]);
    wait_all(spawn_shards(&s, &plan, &extra));
    assert!(
        bucket.head("d/stale.txt").is_some(),
        "nothing deleted before finalize"
    );
    assert!(bucket.head("d/big/image.raw").is_none());
    let reports: Vec<serde_json::Value> = (1..=4)
        .map(|k| {
            serde_json::from_slice(&bucket.get(&format!("reports/shard-{k}-of-4.json"))).unwrap()
        })
        .collect();
    let (items, pieces) = done_exactly_once(&reports);
    assert_eq!(items, 120);
    assert!(pieces >= 4, "{pieces}");

    let out = s
        .cmd()
        .args(["finalize", "--yes"])
        .arg(&plan)
        .args(["--report-dir", &bucket.url("reports")])
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let single = s
        .cmd()
        .args(["sync", "--yes", "--delete", &src, &bucket.url("single")])
        .args(&args)
        .output()
        .unwrap();
    assert!(single.status.success(), "{}", stderr_of(&single));
    // The same objects under both prefixes (the cut file has no sidecar:
    // its next change goes whole and is signed then), and no pieces left.
    let keys = bucket.keys();
    let under = |prefix: &str| -> Vec<String> {
        keys.iter()
            .filter_map(|k| k.strip_prefix(prefix))
            .filter(|k| !k.ends_with(".hssig"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(under("d/"), under("single/"));
    assert!(
        !keys.iter().any(|k| k.contains(".hugesync-split")),
        "{keys:?}"
    );
    assert_eq!(
        bucket.get("d/big/image.raw"),
        std::fs::read(s.path("src/big/image.raw")).unwrap()
    );
    let back = s.path("back");
    let down = s
        .cmd()
        .args(["sync", "--yes", &bucket.url("d")])
        .arg(&back)
        .args(&args)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", stderr_of(&down));
    assert_eq!(tree(&back), tree(&s.src()));
}

/// The paths of a plan in parts, by item id (the items' order across the
/// parts the header names).
fn plan_paths(plan: &Path) -> Vec<String> {
    let header: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plan.join("plan.json")).unwrap()).unwrap();
    let mut paths = Vec::new();
    for part in header["parts"].as_array().unwrap() {
        let text = std::fs::read_to_string(plan.join(part["name"].as_str().unwrap())).unwrap();
        for line in text.lines() {
            let item: serde_json::Value = serde_json::from_str(line).unwrap();
            paths.push(item["path"].as_str().unwrap().to_string());
        }
    }
    paths
}

/// The ids a shard's journal segments hold.
fn journaled(plan: &Path, shard: &str) -> Vec<usize> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(plan).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("shard-{shard}.journal-")) {
            continue;
        }
        let segment: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
        for range in segment["done"].as_array().unwrap() {
            ids.extend(range[0].as_u64().unwrap() as usize..range[1].as_u64().unwrap() as usize);
        }
    }
    ids
}

#[test]
fn a_shard_killed_midway_and_run_again_sends_nothing_it_had_finished() {
    use util::fault_proxy::{FaultProxy, Faults};
    let (s, bucket) = (Scratch::new(), Bucket::new());
    for i in 0..120 {
        s.write(
            &format!("src/d{}/f{i:03}.bin", i % 4),
            &noise(256 * 1024, i as u64),
        );
    }
    let plan = s.path("plan");
    let src = local(&s.src());
    plan_for_shards(&s, 2, &[], [&src, &bucket.url("d")], &bucket.args(), &plan);

    // Shard 1 through a proxy that stops reading bodies a third of the way
    // through its share: the shard stalls there, with a journal of what it
    // finished, and is killed.
    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    proxy.hold_bodies_after(60 * 256 * 1024 / 3);
    let mut shard = s
        .std_cmd()
        .args(["apply", "--yes", "--shard", "1/2", "--jobs", "2"])
        .arg(&plan)
        .args(proxy.args())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while journaled(&plan, "1-of-2").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no journal segment written"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    shard.kill().unwrap();
    shard.wait().unwrap();
    proxy.release();
    let finished = journaled(&plan, "1-of-2");
    let paths = plan_paths(&plan);
    let finished_keys: Vec<String> = finished
        .iter()
        .map(|&id| format!("/{}/d/{}", bucket.name, paths[id]))
        .collect();
    let files_finished = finished
        .iter()
        .filter(|&&id| paths[id].ends_with(".bin"))
        .count();
    assert!(files_finished > 0, "{finished:?}");

    // Run again: what the journal holds is not sent again.
    let seen_before = proxy.counters.lines.lock().unwrap().len();
    let bytes_before = proxy
        .counters
        .body_bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    let again = s
        .cmd()
        .args(["apply", "--yes", "--json", "--shard", "1/2"])
        .arg(&plan)
        .args(proxy.args())
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr_of(&again));
    let lines: Vec<String> = proxy.counters.lines.lock().unwrap()[seen_before..].to_vec();
    for key in &finished_keys {
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("PUT ") && l.contains(key.as_str())),
            "{key} finished before the kill and was sent again: {lines:#?}"
        );
    }
    let sent_again = proxy
        .counters
        .body_bytes
        .load(std::sync::atomic::Ordering::Relaxed)
        - bytes_before;
    let share = 60 * 256 * 1024;
    assert!(
        sent_again <= (share - files_finished * 256 * 1024) as u64 + 64 * 1024,
        "{sent_again} bytes sent again; {files_finished} files had finished"
    );
    let report: serde_json::Value = stdout_of(&again)
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap();
    assert_eq!(report["report"]["complete"], true, "{report}");

    // The rest, and the destination equals the source.
    let out = s
        .cmd()
        .args(["apply", "--yes", "--shard", "2/2"])
        .arg(&plan)
        .args(bucket.args())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = s
        .cmd()
        .args(["finalize", "--yes"])
        .arg(&plan)
        .args(bucket.args())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let back = s.path("back");
    let down = s
        .cmd()
        .args(["sync", "--yes", &bucket.url("d")])
        .arg(&back)
        .args(bucket.args())
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", stderr_of(&down));
    assert_eq!(tree(&back), tree(&s.src()));
}

#[test]
fn eight_shards_list_about_what_one_apply_lists() {
    use util::fault_proxy::{FaultProxy, Faults};
    let (s, bucket) = (Scratch::new(), Bucket::new());
    const FILES: usize = 20_000;
    for i in 0..FILES {
        s.write(
            &format!("src/d{:02}/f{i:05}", i % 40),
            format!("{i:016}").as_bytes(),
        );
    }
    let src = local(&s.src());
    let first = s
        .cmd()
        .args(["sync", "--yes", "--jobs", "32", &src, &bucket.url("d")])
        .args(bucket.args())
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", stderr_of(&first));
    // One file in seven changed since, spread over every directory.
    for i in (0..FILES).step_by(7) {
        s.write(
            &format!("src/d{:02}/f{i:05}", i % 40),
            format!("changed {i:08}").as_bytes(),
        );
    }
    let plan = s.path("plan");
    plan_for_shards(&s, 8, &[], [&src, &bucket.url("d")], &bucket.args(), &plan);

    let proxy = FaultProxy::start(&bucket.endpoint, Faults::default());
    let lists_since = |from: usize| {
        proxy.counters.lines.lock().unwrap()[from..]
            .iter()
            .filter(|l| l.starts_with("GET ") && l.contains("list-type=2"))
            .count()
    };
    // What one `apply` lists: the same scan, without running anything.
    let whole = s
        .cmd()
        .args(["apply", "-n"])
        .arg(&plan)
        .args(proxy.args())
        .output()
        .unwrap();
    assert!(whole.status.success(), "{}", stderr_of(&whole));
    let one_apply = lists_since(0);
    assert!(one_apply >= FILES / 1000, "{one_apply}");

    let from = proxy.counters.lines.lock().unwrap().len();
    let shards: Vec<Child> = (1..=8)
        .map(|k| {
            s.std_cmd()
                .args(["apply", "--yes", "--shard", &format!("{k}/8")])
                .arg(&plan)
                .args(proxy.args())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    wait_all(shards);
    let all_shards = lists_since(from);
    assert!(
        all_shards as f64 <= 1.5 * one_apply as f64,
        "8 shards listed {all_shards} pages, one apply {one_apply}"
    );
    let out = s
        .cmd()
        .args(["finalize", "--yes"])
        .arg(&plan)
        .args(bucket.args())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(bucket.get("d/d14/f00014"), b"changed 00000014");
    assert_eq!(bucket.get("d/d11/f00011"), format!("{:016}", 11).as_bytes());
    eprintln!("LIST requests: one apply {one_apply}, 8 shards {all_shards}");
}
