//! What the stores reached over plain HTTP (Azure, GCS) share: one attempt
//! of a request — signed by the store, its body watched as it goes, the
//! answer's status checked — retried within the store's policy, with the
//! answer's body read inside the attempt so that an answer cut off midway
//! is retried like one that never came; and one mapping of statuses to
//! error kinds, under each store's own table of codes. A store keeps only
//! its signing, its requests and its codes (object_store's `client/` is
//! shared by its backends the same way). S3 keeps the AWS SDK.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode};

use super::body::BodySource;
use super::{RemoteErrorKind, StorageError, error_chain};
use crate::retry::{Activity, Budget, RetryPolicy};

/// A store's side of its requests: how they are signed and what its
/// refusals mean.
#[async_trait::async_trait]
pub(crate) trait Service: super::ObjectStore {
    /// Signs the request's head (a header, a query), or refuses for want of
    /// credentials — a `Denied` error, exit code 4.
    async fn sign(
        &self,
        head: &mut http::request::Parts,
        op: &'static str,
        target: &str,
    ) -> Result<(), StorageError>;

    /// The kind and the message of a refusal, from its status, headers and
    /// body, in the store's terms (its own codes first, then
    /// [`kind_of_status`]).
    fn refusal(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (RemoteErrorKind, String);

    /// The class a request is billed in, from what goes out.
    fn class_of(
        &self,
        method: &Method,
        url: &str,
        headers: &[(String, String)],
    ) -> super::requests::RequestClass;
}

/// What a request sends, as it goes out.
pub(crate) enum Body<'a> {
    Empty,
    Text(String),
    /// Bytes read from a source as they are sent, between an optional head
    /// and tail (a multipart upload's other parts).
    Stream {
        source: BodySource<'a>,
        len: u64,
        frame: Option<(Bytes, Bytes)>,
    },
}

/// One request, as a store built it for one attempt.
pub(crate) struct Outgoing<'a> {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Body<'a>,
    /// A status besides 2xx that is an answer, not a refusal (a resumable
    /// upload's 308).
    pub also_ok: Option<u16>,
    /// The service does the work before it answers (a copy, a commit,
    /// compose): allowed the longer server-side budget.
    pub server_side: bool,
}

/// The kind of a refusal from its status alone, when the store's codes do
/// not say more.
pub(crate) fn kind_of_status(status: StatusCode) -> RemoteErrorKind {
    match status.as_u16() {
        401 | 403 => RemoteErrorKind::Denied,
        412 => RemoteErrorKind::PreconditionFailed,
        404 | 410 => RemoteErrorKind::NotFound,
        408 | 429 | 500..=599 => RemoteErrorKind::Unavailable,
        _ => RemoteErrorKind::Rejected,
    }
}

/// A refusal's message: the service's code and its words, as far as it
/// gave them.
pub(crate) fn refusal_message(status: StatusCode, code: &str, detail: Option<String>) -> String {
    match (code.is_empty(), detail) {
        (false, Some(detail)) => format!("{code}: {detail}"),
        (false, None) => format!("{code} (HTTP {})", status.as_u16()),
        (true, Some(detail)) => format!("HTTP {}: {detail}", status.as_u16()),
        (true, None) => format!("HTTP {}", status.as_u16()),
    }
}

fn invalid(target: &str, message: impl std::fmt::Display) -> StorageError {
    StorageError::Transfer {
        target: target.to_string(),
        message: message.to_string(),
    }
}

/// A store's own description of one request, made into what goes out (the
/// headers every request of the service carries, its length, its body).
pub(crate) trait Request<'a> {
    fn outgoing(self) -> Outgoing<'a>;
}

impl<'a> Request<'a> for Outgoing<'a> {
    fn outgoing(self) -> Outgoing<'a> {
        self
    }
}

/// A store's HTTP client and the policy its requests are retried by.
#[derive(Clone, Debug)]
pub(crate) struct HttpClient {
    pub client: reqwest::Client,
    pub retry: RetryPolicy,
}

impl HttpClient {
    /// A client for one store (`target` names it in an error).
    pub fn new(retry: &RetryPolicy, target: &str) -> Result<HttpClient, StorageError> {
        let client = reqwest::Client::builder()
            .connect_timeout(retry.stall_timeout.min(std::time::Duration::from_secs(10)))
            // Servers close idle connections (Node's default, azurite's, is
            // 5 s): one reused just as it is closed fails its request, so idle
            // ones are dropped before then.
            .pool_idle_timeout(std::time::Duration::from_secs(4))
            .build()
            .map_err(|e| StorageError::Transfer {
                target: target.to_string(),
                message: crate::storage::error_chain(&e.without_url()),
            })?;
        Ok(HttpClient {
            client,
            retry: retry.clone(),
        })
    }

    /// Sends what `build` makes, retried within the policy; a refusal is an
    /// error naming `op` and `target`. The answer's body is not read.
    pub async fn send<'a, R: Request<'a>>(
        &self,
        service: &dyn Service,
        op: &'static str,
        target: &str,
        build: impl Fn() -> R,
    ) -> Result<Response, StorageError> {
        let activity = Arc::new(Activity::default());
        let budget = budget_of(&build().outgoing(), &activity);
        self.retry
            .run(target, budget, || async {
                self.send_once(service, op, target, build(), &activity)
                    .await
            })
            .await
    }

    /// The same, with the answer's body read whole within each attempt.
    pub async fn answer<'a, R: Request<'a>>(
        &self,
        service: &dyn Service,
        op: &'static str,
        target: &str,
        build: impl Fn() -> R,
    ) -> Result<Bytes, StorageError> {
        let activity = Arc::new(Activity::default());
        let budget = budget_of(&build().outgoing(), &activity);
        self.retry
            .run(target, budget, || async {
                let response = self
                    .send_once(service, op, target, build(), &activity)
                    .await?;
                read_answer(response, target).await
            })
            .await
    }

    /// One attempt: signs, sends, and checks the status.
    pub async fn send_once(
        &self,
        service: &dyn Service,
        op: &'static str,
        target: &str,
        request: impl Request<'_>,
        activity: &Arc<Activity>,
    ) -> Result<Response, StorageError> {
        let outgoing = request.outgoing();
        // Every attempt is a request the service counts (and bills).
        service.info().requests.add(service.class_of(
            &outgoing.method,
            &outgoing.url,
            &outgoing.headers,
        ));
        let mut headers = HeaderMap::new();
        for (name, value) in &outgoing.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(target, e))?;
            let value = HeaderValue::from_str(value).map_err(|e| invalid(target, e))?;
            headers.insert(name, value);
        }
        let mut request = http::Request::builder()
            .method(outgoing.method.clone())
            .uri(&outgoing.url)
            .body(())
            .map_err(|e| invalid(target, e))?;
        *request.headers_mut() = headers;
        let (mut head, ()) = request.into_parts();
        service.sign(&mut head, op, target).await?;
        let url = reqwest::Url::parse(&head.uri.to_string()).map_err(|e| invalid(target, e))?;
        let mut request = reqwest::Request::new(head.method, url);
        *request.headers_mut() = head.headers;
        *request.body_mut() = match outgoing.body {
            Body::Empty => None,
            Body::Text(text) => Some(reqwest::Body::from(text)),
            Body::Stream { source, len, frame } => {
                let body = source.open(len, activity).await?;
                Some(reqwest::Body::wrap(match frame {
                    Some((head, tail)) => body.framed(head, tail),
                    None => body,
                }))
            }
        };
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| super::http_error(op, target, e, service.info().hints))?;
        let status = response.status();
        if status.is_success() || outgoing.also_ok == Some(status.as_u16()) {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default();
        let (kind, message) = service.refusal(status, &headers, &body);
        Err(StorageError::Remote {
            op,
            target: target.to_string(),
            kind,
            message,
            hints: service.info().hints,
        })
    }
}

/// How long an attempt may take: a body is watched piece by piece,
/// server-side work gets longer, anything else is quick.
fn budget_of(outgoing: &Outgoing<'_>, activity: &Arc<Activity>) -> Budget {
    let body_len = match &outgoing.body {
        Body::Empty => 0,
        Body::Text(text) => text.len() as u64,
        Body::Stream { len, .. } => *len,
    };
    if body_len > 0 {
        Budget::Watched(activity.clone())
    } else if outgoing.server_side {
        Budget::ServerSide
    } else {
        Budget::Quick
    }
}

/// An answer's body, read whole; one cut off midway is an interruption
/// (retried by the caller's policy).
pub(crate) async fn read_answer(response: Response, target: &str) -> Result<Bytes, StorageError> {
    response
        .bytes()
        .await
        .map_err(|e| StorageError::Interrupted {
            target: target.to_string(),
            message: error_chain(&e.without_url()),
        })
}

/// An answer's body as it arrives; a body cut off midway ends in an
/// interruption, which the readers of `storage::objects` resume from.
pub(crate) fn body_stream(response: Response, target: String) -> super::object::ByteStream {
    use futures::{StreamExt, TryStreamExt};
    response
        .bytes_stream()
        .map_err(move |e| StorageError::Interrupted {
            target: target.clone(),
            message: error_chain(&e.without_url()),
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_alone_say_the_common_kinds() {
        use RemoteErrorKind as K;
        assert_eq!(kind_of_status(StatusCode::UNAUTHORIZED), K::Denied);
        assert_eq!(kind_of_status(StatusCode::FORBIDDEN), K::Denied);
        assert_eq!(
            kind_of_status(StatusCode::PRECONDITION_FAILED),
            K::PreconditionFailed
        );
        assert_eq!(kind_of_status(StatusCode::NOT_FOUND), K::NotFound);
        assert_eq!(kind_of_status(StatusCode::GONE), K::NotFound);
        assert_eq!(
            kind_of_status(StatusCode::TOO_MANY_REQUESTS),
            K::Unavailable
        );
        assert_eq!(kind_of_status(StatusCode::BAD_GATEWAY), K::Unavailable);
        assert_eq!(kind_of_status(StatusCode::BAD_REQUEST), K::Rejected);
    }
}
