//! No credential is ever printed: every credential error path — bad,
//! missing, malformed — on each store ends with exit 4 (or 2 for a setting
//! that cannot be read), names what to fix, and shows neither the secret nor
//! any piece of it on stdout, stderr or the `-vv` log.

mod util;

use util::{Scratch, stderr_of, stdout_of};

/// A secret-looking value whose every 8-character piece is searched for.
const SECRET: &str =
    "4+akIKa6QI/AlLwQ/BtE1ecS2eq9NGbbtUJz48ZtSE/ucfMgRlSJR4tcUl5ImeWus9siLvPDDzBPFC95EBPGvQ==";

/// Asserts that no 8-character piece of `secret` shows in what the run said.
fn assert_not_shown(out: &std::process::Output, secret: &str, case: &str) {
    let said = format!("{}{}", stdout_of(out), stderr_of(out));
    let chars: Vec<char> = secret.chars().collect();
    for piece in chars.windows(8) {
        let piece: String = piece.iter().collect();
        assert!(
            !said.contains(&piece),
            "{case}: `{piece}` of the secret was printed:\n{said}"
        );
    }
}

fn run(scratch: &Scratch, env: &[(&str, &str)], dst: &str) -> std::process::Output {
    scratch
        .cmd()
        .args(["-vv", "sync", "--yes"])
        .arg(scratch.src())
        .arg(dst)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn azure_credential_errors_never_show_the_key() {
    let scratch = Scratch::new();
    scratch.write("src/a.txt", b"a");
    let endpoint = util::azure::endpoint();
    let unpadded = SECRET.trim_end_matches('=');
    let cases = [
        // AccountKey= lost: the bare key, with and without its padding.
        format!("AccountName=devstoreaccount1;{SECRET};BlobEndpoint={endpoint}"),
        format!("AccountName=devstoreaccount1;{unpadded};BlobEndpoint={endpoint}"),
        // A name glued to the key.
        format!("AccountName=devstoreaccount1;AccountKey{SECRET};BlobEndpoint={endpoint}"),
        // A wrong key: the service refuses it (403).
        format!("AccountName=devstoreaccount1;AccountKey={SECRET};BlobEndpoint={endpoint}"),
        // Not base64.
        format!("AccountName=devstoreaccount1;AccountKey=!{unpadded};BlobEndpoint={endpoint}"),
        // A SAS token that is not one.
        format!("BlobEndpoint={endpoint};SharedAccessSignature=sig={unpadded}"),
    ];
    for (i, text) in cases.iter().enumerate() {
        let out = run(
            &scratch,
            &[("AZURE_STORAGE_CONNECTION_STRING", text)],
            "az://hugesync-creds/p",
        );
        let case = format!("connection string {}", i + 1);
        assert_eq!(out.status.code(), Some(4), "{case}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("AZURE_STORAGE_CONNECTION_STRING"),
            "{case}: {}",
            stderr_of(&out)
        );
        assert_not_shown(&out, SECRET, &case);
    }
    // A SAS that expired an hour ago, signed with the right key: refused.
    let container = util::azure::Container::new();
    let (token, signature) = util::azure::container_sas(
        &container.name,
        "rwdl",
        reqsign_core::time::Timestamp::now() - std::time::Duration::from_secs(3600),
    );
    let out = run(
        &scratch,
        &[(
            "AZURE_STORAGE_CONNECTION_STRING",
            &format!(
                "BlobEndpoint={};SharedAccessSignature={token}",
                container.endpoint
            ),
        )],
        &container.url("p"),
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "expired SAS: {}",
        stderr_of(&out)
    );
    assert_not_shown(&out, &signature, "expired SAS");
    assert!(container.keys().is_empty());

    // Nothing configured at all: where credentials come from is named.
    let out = run(&scratch, &[], "az://hugesync-creds/p");
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("AZURE_STORAGE_CONNECTION_STRING"));

    // The account key on its own, wrong.
    let out = run(
        &scratch,
        &[
            ("AZURE_STORAGE_ACCOUNT", "devstoreaccount1"),
            ("AZURE_STORAGE_KEY", SECRET),
            ("HUGESYNC_AZURE_ENDPOINT_URL", &endpoint),
        ],
        "az://hugesync-creds/p",
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert_not_shown(&out, SECRET, "AZURE_STORAGE_KEY");
}

#[test]
fn gcs_names_a_missing_or_unreadable_key_file_and_never_shows_its_key() {
    let scratch = Scratch::new();
    scratch.write("src/a.txt", b"a");
    let missing = scratch.path("nope.json");
    let out = run(
        &scratch,
        &[("GOOGLE_APPLICATION_CREDENTIALS", &util::local(&missing))],
        "gs://hugesync-creds/p",
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(&util::local(&missing)),
        "the file is named: {}",
        stderr_of(&out)
    );
    assert!(stderr_of(&out).contains("GOOGLE_APPLICATION_CREDENTIALS"));

    // A key file that is there but not a key: its private key never shows.
    let key_file = scratch.write(
        "key.json",
        format!(
            "{{\"type\": \"service_account\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{SECRET}\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"x@y.iam.gserviceaccount.com\", \"token_uri\": \"http://127.0.0.1:9/token\"}}"
        )
        .as_bytes(),
    );
    let out = run(
        &scratch,
        &[("GOOGLE_APPLICATION_CREDENTIALS", &util::local(&key_file))],
        "gs://hugesync-creds/p",
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert_not_shown(&out, SECRET, "service account key");
}

#[test]
fn s3_credential_errors_never_show_the_secret() {
    let scratch = Scratch::new();
    scratch.write("src/a.txt", b"a");
    let endpoint = util::s3::auth_endpoint();
    let out = scratch
        .cmd()
        .args(["-vv", "sync", "--yes"])
        .arg(scratch.src())
        .arg("s3://some-bucket/x")
        .args(["--endpoint-url", &endpoint, "--path-style"])
        .env("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert_not_shown(&out, SECRET, "S3 secret key");
}
