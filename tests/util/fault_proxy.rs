//! A fault-injecting HTTP proxy on 127.0.0.1, between hugesync and moto.
//!
//! One request per client connection (answers carry `Connection: close`), so
//! every request can be given its own fate: passed through, its connection
//! reset before or after the server saw it (the second loses an answer to a
//! request that took effect), answered `503 SlowDown`, or stalled halfway
//! through the answer. It counts what passes, so tests can assert on the
//! bytes a run really sent, and wait for a run to reach a point by bytes seen
//! rather than by sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Fractions of requests that meet each fault, out of 1.0 in all.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Connection reset before the request reaches the server.
    pub reset_before: f64,
    /// Connection reset after the server answered (the answer is lost).
    pub reset_after: f64,
    /// `503 SlowDown` without asking the server.
    pub slow_down: f64,
    /// Half the answer, then silence until the client gives up.
    pub stall: f64,
}

impl Faults {
    /// `total` spread evenly over the four faults.
    pub fn mixed(total: f64) -> Faults {
        Faults {
            reset_before: total / 4.0,
            reset_after: total / 4.0,
            slow_down: total / 4.0,
            stall: total / 4.0,
        }
    }
}

#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    /// Requests other than GET and HEAD: the ones that change something.
    pub writes: AtomicU64,
    pub faults: AtomicU64,
    /// Request body bytes that reached the server.
    pub body_bytes: AtomicU64,
    /// Request body bytes read from clients, counted as they arrive (a
    /// request is forwarded only once its body is whole).
    pub received_bytes: AtomicU64,
    /// The first line of every request (method, path and query), in order.
    pub lines: std::sync::Mutex<Vec<String>>,
    /// Request body bytes of staged parts: requests whose first line contains
    /// `partNumber=` (S3) or `comp=block&` (Azure).
    pub part_bytes: AtomicU64,
    /// Connections being handled now (reading, forwarding, answering).
    pub active: AtomicU64,
    /// Part bodies still to damage (one byte flipped on the way to the
    /// server), and those damaged so far.
    pub damage_parts: AtomicU64,
    pub damaged: AtomicU64,
    /// Answers to object GETs still to damage (one byte of the body flipped
    /// on the way to the client).
    pub damage_answers: AtomicU64,
    /// The header block of every staged part request, in order.
    pub part_heads: std::sync::Mutex<Vec<String>>,
}

/// `hold_at` while held requests are being dropped.
const DROP_HELD: u64 = u64::MAX - 1;

/// A write made by "someone else" just before the first request whose first
/// line starts with `trigger` goes through: a concurrent change, on cue.
#[derive(Clone, Debug)]
pub struct Interference {
    pub trigger: String,
    /// `bucket/key` (S3) or `container/blob` (Azure) to PUT.
    pub path: String,
    pub body: Vec<u8>,
    /// Which store's protocol the write speaks.
    pub store: Store,
}

/// The protocol of the server behind the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    S3,
    /// azurite's development account.
    Azure,
}

type Pending = Arc<std::sync::Mutex<Vec<Interference>>>;

pub struct FaultProxy {
    pub endpoint: String,
    pub counters: Arc<Counters>,
    faults: Arc<std::sync::Mutex<Faults>>,
    interference: Pending,
    /// Request bodies stop being read once this many body bytes arrived
    /// (`u64::MAX`: never), until released.
    hold_at: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let counters = Arc::new(Counters::default());
        let faults = Arc::new(std::sync::Mutex::new(faults));
        let stop = Arc::new(AtomicBool::new(false));
        let interference: Pending = Arc::default();
        let hold_at = Arc::new(AtomicU64::new(u64::MAX));
        let thread = {
            let (counters, faults, stop) = (counters.clone(), faults.clone(), stop.clone());
            let interference = interference.clone();
            let hold_at = hold_at.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(serve(
                    listener,
                    upstream,
                    counters,
                    faults,
                    interference,
                    hold_at,
                    stop,
                ));
            })
        };
        FaultProxy {
            endpoint,
            counters,
            faults,
            interference,
            hold_at,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops reading request bodies once `bytes` body bytes have arrived in
    /// all: a client killed then has a request the server never sees.
    pub fn hold_bodies_after(&self, bytes: u64) {
        self.hold_at.store(bytes, Ordering::Relaxed);
    }

    /// Drops the requests held (as a server sees a client killed before its
    /// body was whole), waits until every connection is done with, then
    /// reads bodies again. Forwarding a held request instead could deliver
    /// it whole after its client was killed (the rest of its body already
    /// in the kernel's buffers), behind the back of the run that resumes.
    pub fn release(&self) {
        self.hold_at.store(DROP_HELD, Ordering::Relaxed);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while self.counters.active.load(Ordering::Relaxed) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the proxy's connections did not end"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.hold_at.store(u64::MAX, Ordering::Relaxed);
    }

    /// Flips a byte in each of the next `count` staged part bodies (S3
    /// parts, Azure blocks) on their way to the server, as a faulty link
    /// would: only the body's checksum can tell.
    pub fn damage_parts(&self, count: u64) {
        self.counters.damage_parts.store(count, Ordering::Relaxed);
    }

    /// Flips a byte in the body of each of the next `count` answers to an
    /// object GET (not a listing), on their way to the client.
    pub fn damage_answers(&self, count: u64) {
        self.counters.damage_answers.store(count, Ordering::Relaxed);
    }

    pub fn damaged(&self) -> u64 {
        self.counters.damaged.load(Ordering::Relaxed)
    }

    /// Arms a one-time concurrent write (see [`Interference`]).
    pub fn interfere(&self, interference: Interference) {
        self.interference.lock().unwrap().push(interference);
    }

    /// Whether every armed write happened.
    pub fn interfered(&self) -> bool {
        self.interference.lock().unwrap().is_empty()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }

    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }

    pub fn writes(&self) -> u64 {
        self.counters.writes.load(Ordering::Relaxed)
    }

    pub fn faults(&self) -> u64 {
        self.counters.faults.load(Ordering::Relaxed)
    }

    pub fn part_bytes(&self) -> u64 {
        self.counters.part_bytes.load(Ordering::Relaxed)
    }

    /// The flags that point hugesync at the proxy.
    pub fn args(&self) -> [String; 3] {
        [
            "--endpoint-url".into(),
            self.endpoint.clone(),
            "--path-style".into(),
        ]
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    upstream: String,
    counters: Arc<Counters>,
    faults: Arc<std::sync::Mutex<Faults>>,
    interference: Pending,
    hold_at: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let listener = TcpListener::from_std(listener).unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    while !stop.load(Ordering::Relaxed) {
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        let Ok(Ok((client, _))) = accepted else {
            continue;
        };
        // xorshift: a fixed sequence of fates, the same for every run.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let roll = (rng >> 11) as f64 / (1u64 << 53) as f64;
        let fate = fate_of(roll, *faults.lock().unwrap());
        let (upstream, counters, stop) = (upstream.clone(), counters.clone(), stop.clone());
        let (interference, hold_at) = (interference.clone(), hold_at.clone());
        counters.active.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _ = handle(
                client,
                &upstream,
                fate,
                &counters,
                &interference,
                &hold_at,
                &stop,
            )
            .await;
            counters.active.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Pass,
    ResetBefore,
    ResetAfter,
    SlowDown,
    Stall,
}

fn fate_of(roll: f64, f: Faults) -> Fate {
    let mut edge = f.reset_before;
    if roll < edge {
        return Fate::ResetBefore;
    }
    edge += f.reset_after;
    if roll < edge {
        return Fate::ResetAfter;
    }
    edge += f.slow_down;
    if roll < edge {
        return Fate::SlowDown;
    }
    edge += f.stall;
    if roll < edge {
        return Fate::Stall;
    }
    Fate::Pass
}

/// A Put Blob straight to azurite, signed with the development key.
async fn azure_put(upstream: &str, path: &str, body: Vec<u8>) {
    let url = format!("http://{upstream}/{}/{path}", super::azure::ACCOUNT);
    let signer = reqsign_core::Signer::new(
        reqsign_core::Context::new(),
        reqsign_azure_storage::StaticCredentialProvider::new_shared_key(
            super::azure::ACCOUNT,
            super::azure::KEY,
        ),
        reqsign_azure_storage::RequestSigner::new(),
    );
    let (mut parts, ()) = http::Request::put(&url)
        .header("x-ms-version", "2024-08-04")
        .header("x-ms-blob-type", "BlockBlob")
        .header("content-length", body.len().to_string())
        .body(())
        .unwrap()
        .into_parts();
    signer.sign(&mut parts, None).await.unwrap();
    let mut request = reqwest::Request::new(parts.method, reqwest::Url::parse(&url).unwrap());
    *request.headers_mut() = parts.headers;
    *request.body_mut() = Some(body.into());
    let status = reqwest::Client::new()
        .execute(request)
        .await
        .expect("the interfering write")
        .status();
    assert!(status.is_success(), "the interfering write: {status}");
}

/// Reads up to the end of the header block; returns it and any body bytes
/// read past it.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok(Some((buf, rest)));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// The head with `Connection: close` in place of any connection header, and
/// without `Expect` (the proxy answers 100-continue itself).
fn rewrite_head(head: &str) -> Vec<u8> {
    let mut out = String::new();
    for (i, line) in head.trim_end_matches("\r\n").split("\r\n").enumerate() {
        let name = line.split(':').next().unwrap_or("").trim();
        if i > 0 && (name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("expect"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// Flips a byte in the middle of a non-empty `body` while `left` (taken
/// one at a time) says to, counting it.
fn damage(body: &mut [u8], left: &AtomicU64, counters: &Counters) {
    if body.is_empty()
        || left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
    {
        return;
    }
    let middle = body.len() / 2;
    body[middle] ^= 0x20;
    counters.damaged.fetch_add(1, Ordering::Relaxed);
}

fn reset(stream: TcpStream) {
    // Linger 0: closing sends RST, as a broken middlebox would.
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn handle(
    mut client: TcpStream,
    upstream: &str,
    fate: Fate,
    counters: &Counters,
    interference: &Pending,
    hold_at: &AtomicU64,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let Some((head, mut body)) = read_head(&mut client).await? else {
        return Ok(());
    };
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let head = String::from_utf8_lossy(&head).into_owned();
    if let Ok(mut lines) = counters.lines.lock() {
        lines.push(head.lines().next().unwrap_or_default().to_string());
    }
    if !(head.starts_with("GET ") || head.starts_with("HEAD ")) {
        counters.writes.fetch_add(1, Ordering::Relaxed);
    }
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if header(&head, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    while body.len() < length {
        loop {
            let hold = hold_at.load(Ordering::Relaxed);
            if stop.load(Ordering::Relaxed) || hold == DROP_HELD {
                return Ok(());
            }
            if counters.received_bytes.load(Ordering::Relaxed) < hold {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut chunk = vec![0u8; (length - body.len()).min(1 << 20)];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        counters
            .received_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        body.extend_from_slice(&chunk[..n]);
    }
    if fate != Fate::Pass {
        counters.faults.fetch_add(1, Ordering::Relaxed);
    }
    match fate {
        Fate::ResetBefore => {
            reset(client);
            return Ok(());
        }
        Fate::SlowDown => {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
            let answer = format!(
                "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
            client.write_all(answer.as_bytes()).await?;
            return client.shutdown().await;
        }
        _ => {}
    }
    let cue = {
        let mut armed = interference.lock().unwrap();
        armed
            .iter()
            .position(|i| head.starts_with(&i.trigger))
            .map(|at| armed.remove(at))
    };
    if let Some(write) = cue.as_ref().filter(|w| w.store == Store::Azure) {
        azure_put(upstream, &write.path, write.body.clone()).await;
    } else if let Some(write) = cue {
        let (bucket, key) = write.path.split_once('/').unwrap();
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "proxy",
            ))
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://{upstream}"))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(write.body.into())
            .send()
            .await
            .expect("the interfering write");
    }
    let is_part = head
        .lines()
        .next()
        .is_some_and(|l| l.contains("partNumber=") || l.contains("comp=block&"));
    if is_part && let Ok(mut heads) = counters.part_heads.lock() {
        heads.push(head.clone());
    }
    if is_part {
        damage(&mut body, &counters.damage_parts, counters);
    }
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&rewrite_head(&head)).await?;
    server.write_all(&body).await?;
    counters
        .body_bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    if is_part {
        counters
            .part_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
    }
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).await?;
    // The client must not keep this connection for a next request.
    if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
        let rest = answer.split_off(end + 4);
        let head_text = String::from_utf8_lossy(&answer).into_owned();
        let mut rest = rest;
        // Object reads only: listings are left alone.
        let object_read = head.lines().next().is_some_and(|line| {
            line.starts_with("GET ")
                && !["list-type=", "comp=list", "prefix=", "uploads"]
                    .iter()
                    .any(|query| line.contains(query))
        });
        if object_read && head_text.starts_with("HTTP/1.1 2") {
            damage(&mut rest, &counters.damage_answers, counters);
        }
        answer = rewrite_head(&head_text);
        answer.extend_from_slice(&rest);
    }
    match fate {
        Fate::ResetAfter => reset(client),
        Fate::Stall => {
            client.write_all(&answer[..answer.len() / 2]).await?;
            // Silence until the client gives up (or the proxy stops).
            let mut probe = [0u8; 1];
            while !stop.load(Ordering::Relaxed) {
                let read =
                    tokio::time::timeout(Duration::from_millis(200), client.read(&mut probe)).await;
                if let Ok(Ok(0) | Err(_)) = read {
                    break;
                }
            }
        }
        _ => {
            client.write_all(&answer).await?;
            client.shutdown().await?;
        }
    }
    Ok(())
}
