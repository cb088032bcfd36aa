use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn file(text: &str) -> Option<(PathBuf, ConfigFile)> {
    Some(("/etc/hs.toml".into(), toml::from_str(text).unwrap()))
}

#[test]
fn precedence_is_cli_env_file_default() {
    let env = env_of(&[("HUGESYNC_JOBS", "4"), ("HUGESYNC_DELETE", "yes")]);
    let cli = Overrides {
        delete: Some(false),
        ..Default::default()
    };
    let s = Settings::layer(
        file("jobs = 2\nchecksum = true\nblock_size = \"1MiB\""),
        &env,
        cli,
    )
    .unwrap();
    assert_eq!(s.jobs.value, 4);
    assert_eq!(s.jobs.origin, Origin::Env("HUGESYNC_JOBS"));
    assert!(!s.delete.value);
    assert_eq!(s.delete.origin, Origin::CommandLine);
    assert!(s.checksum.value);
    assert_eq!(s.checksum.origin, Origin::File("/etc/hs.toml".into()));
    assert_eq!(s.block_size.value, Size(1024 * 1024));
    assert_eq!(s.archive.origin, Origin::Default);
}

#[test]
fn unknown_keys_are_named() {
    let err = toml::from_str::<ConfigFile>("jobz = 3")
        .unwrap_err()
        .to_string();
    assert!(err.contains("jobz"), "{err}");
}

#[test]
fn bad_env_and_ranges_are_reported() {
    let env = env_of(&[("HUGESYNC_JOBS", "many")]);
    let err = Settings::layer(None, &env, Overrides::default()).unwrap_err();
    assert!(err.to_string().contains("HUGESYNC_JOBS"), "{err}");

    let s = Settings::layer(
        file("block_size = \"10MiB\""),
        &env_of(&[]),
        Overrides::default(),
    )
    .unwrap();
    let err = s.validate().unwrap_err().to_string();
    assert!(
        err.contains("block_size") && err.contains("/etc/hs.toml"),
        "{err}"
    );
}

#[test]
fn config_path_order() {
    let env = env_of(&[("HUGESYNC_CONFIG", "/x/env.toml")]);
    assert_eq!(
        config_path(Some(Path::new("/x/flag.toml")), &env),
        Some(("/x/flag.toml".into(), true))
    );
    assert_eq!(config_path(None, &env), Some(("/x/env.toml".into(), true)));
    let (default, explicit) = config_path(None, &env_of(&[])).unwrap();
    assert!(default.ends_with("hugesync/config.toml"));
    assert!(!explicit);
}
