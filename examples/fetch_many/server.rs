//! A deliberately flaky HTTP/1.1 server on 127.0.0.1, on smol's networking
//! (async-io: it runs under any executor, driven by its own thread here).
//!
//! Each path `/item/N` behaves by a fixed, seeded plan per attempt: answer
//! after a random delay, answer 503 with `Retry-After`, hang until the
//! client gives up, or (for a few paths) answer 404 every time.

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server does for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    Ok { delay_ms: u64 },
    Busy { retry_after_s: u64 },
    Hang,
    NotFound,
}

/// How the server decides: the same seed gives the same plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flakiness {
    pub(crate) seed: u64,
    /// Percent of first attempts that get a 503.
    pub(crate) busy: u64,
    /// Percent of attempts that hang.
    pub(crate) hang: u64,
    /// Every `not_found`-th item is missing (0: none).
    pub(crate) not_found: u64,
    pub(crate) max_delay_ms: u64,
}

impl Flakiness {
    fn behaviour(&self, item: u64, attempt: u64) -> Behaviour {
        if self.not_found != 0 && item % self.not_found == self.not_found - 1 {
            return Behaviour::NotFound;
        }
        let mut rng = fastrand::Rng::with_seed(
            self.seed ^ item.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ attempt,
        );
        let roll = rng.u64(0..100);
        if attempt == 0 && roll < self.busy {
            Behaviour::Busy { retry_after_s: 1 }
        } else if attempt < 2 && roll >= 100 - self.hang {
            Behaviour::Hang
        } else {
            Behaviour::Ok {
                delay_ms: rng.u64(0..=self.max_delay_ms),
            }
        }
    }
}

/// Starts the server on a free port of 127.0.0.1, on a thread of its own,
/// and returns its address. It serves until the process ends.
pub(crate) fn start(flakiness: Flakiness) -> SocketAddr {
    let listener = smol::block_on(TcpListener::bind("127.0.0.1:0")).expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("a local address");
    let attempts: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    std::thread::Builder::new()
        .name("flaky-server".into())
        .spawn(move || {
            let executor = smol::Executor::new();
            smol::block_on(executor.run(async {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let attempts = attempts.clone();
                    executor.spawn(serve(stream, flakiness, attempts)).detach();
                }
            }))
        })
        .expect("a server thread");
    addr
}

async fn serve(
    mut stream: TcpStream,
    flakiness: Flakiness,
    attempts: Arc<Mutex<HashMap<u64, u64>>>,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        if request.len() > 16 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&request);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let Some(item) = path
        .strip_prefix("/item/")
        .and_then(|n| n.parse::<u64>().ok())
    else {
        let _ = respond(&mut stream, "404 Not Found", &[], "no such path\n").await;
        return;
    };
    let attempt = {
        let mut attempts = attempts.lock().unwrap();
        let count = attempts.entry(item).or_insert(0);
        *count += 1;
        *count - 1
    };
    match flakiness.behaviour(item, attempt) {
        Behaviour::Ok { delay_ms } => {
            smol::Timer::after(Duration::from_millis(delay_ms)).await;
            let body = format!("item {item}: {}\n", "x".repeat((item % 50) as usize));
            let _ = respond(&mut stream, "200 OK", &[], &body).await;
        }
        Behaviour::Busy { retry_after_s } => {
            let retry_after = retry_after_s.to_string();
            let _ = respond(
                &mut stream,
                "503 Service Unavailable",
                &[("Retry-After", &retry_after)],
                "busy\n",
            )
            .await;
        }
        Behaviour::Hang => {
            // Never answers; the client's timeout is the way out.
            std::future::pending::<()>().await;
        }
        Behaviour::NotFound => {
            let _ = respond(&mut stream, "404 Not Found", &[], "gone\n").await;
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(body);
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await
}
