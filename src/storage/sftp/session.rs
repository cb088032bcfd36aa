//! The SSH connection a store's requests go over, made again when it drops.
//!
//! One `ssh` process carries one SFTP session for the run. When it ends (a
//! network cut, a restarted server, a killed session), the requests in
//! flight fail; the next request finds the process gone and connects anew —
//! a bounded number of times, with the run's backoff — so the rest of the
//! run goes on (rclone #1177: one broken pipe ended a 128 GB transfer).
//! Writes are retried by the store over the new session, as an object
//! store's PUT is. Temp files the dropped session could not remove stay on
//! the server and are removed as leftovers by the next run.

use std::sync::Arc;

use openssh_sftp_client::Sftp;
use tokio::sync::{Mutex, RwLock};

use super::SftpTarget;
use super::cipher;
use super::connect::{self, SftpSettings};
use crate::retry::RetryPolicy;
use crate::storage::StorageError;

/// One SFTP session over one `ssh` process.
pub(super) struct Session {
    pub sftp: Sftp,
    /// The `ssh` process; killed when the session is dropped.
    ssh: Mutex<tokio::process::Child>,
}

impl Session {
    /// Whether the `ssh` process has ended (the session is dead).
    async fn ended(&self) -> bool {
        self.ssh
            .lock()
            .await
            .try_wait()
            .map_or(true, |status| status.is_some())
    }
}

/// The current session, and how to make another.
pub(super) struct Link {
    current: RwLock<Arc<Session>>,
    /// Serialises reconnections: one attempt at a time, for every request.
    reconnecting: Mutex<()>,
    /// Set once reconnecting has failed every attempt: later requests fail
    /// at once instead of waiting through the backoff again.
    gave_up: std::sync::Mutex<Option<String>>,
    settings: SftpSettings,
    target: SftpTarget,
    ciphers: Option<String>,
    retry: RetryPolicy,
    /// A private directory for the connection's control socket (removed
    /// with the link), when one could be made.
    control: Option<tempfile::TempDir>,
}

impl Link {
    /// Connects for the first time (its failure is the run's: nothing to
    /// retry into).
    pub async fn open(
        settings: &SftpSettings,
        target: &SftpTarget,
        retry: &RetryPolicy,
    ) -> Result<Link, StorageError> {
        let ciphers = cipher::preferred(
            settings.program(),
            &settings.common_args(target),
            &target.host,
        )
        .await;
        // Short (a socket path has ~100 bytes at most) and private.
        let control = tempfile::Builder::new()
            .prefix("hugesync-ssh-")
            .tempdir_in(if std::path::Path::new("/tmp").is_dir() {
                std::path::PathBuf::from("/tmp")
            } else {
                std::env::temp_dir()
            })
            .ok();
        let socket = control.as_ref().map(|dir| dir.path().join("s"));
        let session = open_session(settings, target, ciphers.as_deref(), socket.as_deref()).await?;
        Ok(Link {
            current: RwLock::new(Arc::new(session)),
            reconnecting: Mutex::new(()),
            gave_up: std::sync::Mutex::new(None),
            settings: settings.clone(),
            target: target.clone(),
            ciphers,
            retry: retry.clone(),
            control,
        })
    }

    /// The control socket commands on the server go through.
    pub fn control(&self) -> Option<std::path::PathBuf> {
        self.control.as_ref().map(|dir| dir.path().join("s"))
    }

    /// The session to send a request over: the current one while its `ssh`
    /// lives, else a new one.
    pub async fn session(&self) -> Result<Arc<Session>, StorageError> {
        let current = self.current.read().await.clone();
        if !current.ended().await {
            return Ok(current);
        }
        let _one_at_a_time = self.reconnecting.lock().await;
        let latest = self.current.read().await.clone();
        if !Arc::ptr_eq(&latest, &current) && !latest.ended().await {
            return Ok(latest); // another request reconnected meanwhile
        }
        if let Some(why) = self
            .gave_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(self.lost(why));
        }
        let mut last = String::new();
        for attempt in 0..=self.retry.retries {
            if attempt > 0 {
                tokio::time::sleep(self.retry.delay(attempt)).await;
            }
            tracing::warn!(
                "{}: the SSH connection dropped; connecting again (attempt {})",
                self.target,
                attempt + 1
            );
            let socket = self.control();
            match open_session(
                &self.settings,
                &self.target,
                self.ciphers.as_deref(),
                socket.as_deref(),
            )
            .await
            {
                Ok(session) => {
                    let session = Arc::new(session);
                    *self.current.write().await = session.clone();
                    return Ok(session);
                }
                Err(e) => last = e.to_string(),
            }
        }
        *self.gave_up.lock().unwrap_or_else(|e| e.into_inner()) = Some(last.clone());
        Err(self.lost(last))
    }

    fn lost(&self, why: String) -> StorageError {
        StorageError::Remote {
            op: "lost the connection to",
            hints: &super::HINTS,
            kind: crate::storage::RemoteErrorKind::Network,
            target: self.target.to_string(),
            message: format!(
                "it dropped and could not be made again after {} attempts: {why}",
                self.retry.retries + 1
            ),
        }
    }
}

/// Starts `ssh` with the SFTP subsystem and opens the session over it.
async fn open_session(
    settings: &SftpSettings,
    target: &SftpTarget,
    ciphers: Option<&str>,
    control: Option<&std::path::Path>,
) -> Result<Session, StorageError> {
    let connect::SshProcess {
        mut child,
        stdin,
        stdout,
        mut stderr,
    } = connect::spawn(settings, target, ciphers, control)?;
    // Requests go out as soon as they are made: the library's default
    // holds each up to 0.5 ms to batch it, which a run of small files,
    // five round trips each, pays ten thousand times over.
    let options = openssh_sftp_client::SftpOptions::new().flush_interval(std::time::Duration::ZERO);
    let sftp = match Sftp::new(stdin, stdout, options).await {
        Ok(sftp) => sftp,
        Err(_) => {
            let _ = child.wait().await;
            let said = connect::said(&mut stderr).await;
            return Err(connect::diagnose(settings, target, &said).await);
        }
    };
    // ssh keeps talking on stderr (warnings, a dropped link): drained
    // into the log so that it never blocks or dies on a closed pipe.
    tokio::spawn(async move {
        let said = connect::said(&mut stderr).await;
        for line in said.lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!("ssh: {line}");
        }
    });
    Ok(Session {
        sftp,
        ssh: Mutex::new(child),
    })
}
