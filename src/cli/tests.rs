use super::*;
use crate::filter::RuleKind;
use clap::{CommandFactory, FromArgMatches};

#[test]
fn cli_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn filters_keep_command_line_order() {
    let matches = Cli::command()
        .try_get_matches_from([
            "hugesync",
            "plan",
            "a",
            "b",
            "--exclude",
            "x",
            "--include",
            "y",
            "--exclude",
            "z",
        ])
        .unwrap();
    let rules = selectors(&matches).unwrap().filters;
    let got: Vec<_> = rules.iter().map(|r| (r.kind, r.pattern.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (RuleKind::Exclude, "x"),
            (RuleKind::Include, "y"),
            (RuleKind::Exclude, "z")
        ]
    );
    let cli = Cli::from_arg_matches(&matches).unwrap();
    assert!(matches!(cli.command, Command::Plan(_)));
}

#[test]
fn sizes_are_human() {
    let matches = Cli::command()
        .try_get_matches_from(["hugesync", "sync", "a", "b", "--block-size", "64KiB"])
        .unwrap();
    let Command::Sync(args) = Cli::from_arg_matches(&matches).unwrap().command else {
        panic!("not sync")
    };
    assert_eq!(args.plan.block_size, Some(64 * 1024));
    assert!(
        Cli::command()
            .try_get_matches_from(["hugesync", "sync", "a", "b", "--block-size", "big"])
            .is_err()
    );
}
