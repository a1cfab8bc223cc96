//! Typed classification of client errors: reqwest responses through
//! `http_status::error_for_status` against a loopback server (refused, timed out, 429 and 503
//! with their Retry-After, 401, 404), the healer waiting a Retry-After, and the errors of
//! sqlx, tonic, redis and hyper (each behind its feature).
//!
//! The socket tests run on the real clock with tiny timeouts; the waiting is tested on tokio's
//! paused clock with a constructed error.

mod common;
mod loopback;

use std::error::Error;
use std::time::{Duration, SystemTime};

use self_healing_runtime::diagnosis::{
    Analyzer, Diagnosis, ErrorClass, Failure, RuleAnalyzer, chain_message_of,
};

/// What the built-in analyzer makes of `error`.
fn diagnose(error: &(dyn Error + 'static)) -> Diagnosis {
    let site = test_site!("typed", Api);
    let message = chain_message_of(error);
    RuleAnalyzer::new().analyze(&Failure {
        site,
        error,
        message: &message,
        attempt: 1,
        elapsed: Duration::ZERO,
    })
}

/// An application error wrapping a client's, as `thiserror` would.
#[derive(Debug)]
struct AppError(Box<dyn Error + Send + Sync>);

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call failed")
    }
}

impl Error for AppError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

impl From<self_healing_runtime::Rejected> for AppError {
    fn from(r: self_healing_runtime::Rejected) -> Self {
        AppError(Box::new(r))
    }
}

mod http {
    use std::sync::atomic::{AtomicU32, Ordering};

    use reqwest::StatusCode;
    use self_healing_runtime::diagnosis::RetryAfter;
    use self_healing_runtime::http_status::{HttpStatusError, error_for_status};
    use self_healing_runtime::{Healer, InMemoryStore, WithHealerExt, heal};
    use tokio::time::Instant;

    use super::loopback::{Reply, Server};
    use super::*;

    fn client() -> reqwest::Client {
        // With the HTTPS client's features reqwest has TLS without a provider of its own: the
        // program installs one (here `ring`; a second install is refused, which is fine).
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap()
    }

    /// One GET to a server answering `reply`, through `error_for_status`.
    async fn get(reply: Reply) -> Result<String, HttpStatusError> {
        let server = Server::start(move |_, _| reply.clone()).await;
        let response = client().get(server.url()).send().await.unwrap();
        Ok(error_for_status(response).await?.text().await.unwrap())
    }

    fn reply(status: u16, headers: Vec<(&'static str, String)>, body: &str) -> Reply {
        Reply::Respond {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_refused_connection_was_never_reached() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let error = client()
            .get(format!("http://{addr}"))
            .send()
            .await
            .unwrap_err();
        let d = diagnose(&AppError(Box::new(error)));
        assert_eq!(d.class, ErrorClass::ConnectionLost);
        assert!(d.never_reached, "nothing was sent: {}", d.reason);
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let server = Server::start(|_, _| Reply::Hang).await;
        let error = client().get(server.url()).send().await.unwrap_err();
        let d = diagnose(&error);
        assert_eq!(d.class, ErrorClass::Timeout, "{}", d.reason);
        assert!(!d.never_reached);
    }

    #[tokio::test]
    async fn a_success_passes_through() {
        assert_eq!(get(Reply::text(200, "ok")).await, Ok("ok".to_owned()));
    }

    #[tokio::test]
    async fn a_429_keeps_its_retry_after_in_seconds() {
        let error = get(reply(429, vec![("Retry-After", "7".into())], "slow down"))
            .await
            .unwrap_err();
        assert_eq!(error.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            error.retry_after(),
            Some(RetryAfter::After(Duration::from_secs(7)))
        );
        assert_eq!(error.body_excerpt(), "slow down");
        let d = diagnose(&AppError(Box::new(error)));
        let seven = Some(Duration::from_secs(7));
        assert_eq!(d.class, ErrorClass::RateLimited { retry_after: seven });
        assert_eq!(d.retry_after, seven);
    }

    #[tokio::test]
    async fn a_503_keeps_its_retry_after_as_a_date() {
        let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let error = get(reply(503, vec![("Retry-After", at)], "maintenance"))
            .await
            .unwrap_err();
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(matches!(error.retry_after(), Some(RetryAfter::At(_))));
        let d = diagnose(&error);
        assert_eq!(d.class, ErrorClass::Transient);
        let wait = d.retry_after.expect("the date is the wait");
        // The date has whole seconds: up to one less than asked, by now.
        assert!(
            wait > Duration::from_secs(27) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
    }

    #[tokio::test]
    async fn a_401_is_expired_credentials() {
        let error = get(Reply::text(401, "token expired")).await.unwrap_err();
        let d = diagnose(&error);
        assert_eq!(d.class, ErrorClass::AuthExpired);
        assert_eq!(d.retry_after, None);
    }

    #[tokio::test]
    async fn a_404_is_permanent_and_keeps_the_start_of_the_body() {
        let body = "x".repeat(10_000);
        let error = get(Reply::text(404, &body)).await.unwrap_err();
        assert_eq!(
            error.body_excerpt().len(),
            self_healing_runtime::http_status::BODY_EXCERPT_BYTES
        );
        assert_eq!(diagnose(&error).class, ErrorClass::Permanent);
    }

    #[tokio::test]
    async fn a_408_is_a_timeout() {
        let error = get(Reply::text(408, "")).await.unwrap_err();
        assert_eq!(diagnose(&error).class, ErrorClass::Timeout);
    }

    fn healer() -> Healer {
        Healer::builder()
            .store(InMemoryStore::new())
            .backoff(Duration::from_millis(10), Duration::from_millis(100))
            .build()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_healed_call_waits_the_retry_after() {
        for (site, status, retry_after) in [
            (
                test_site!("typedWait429", Api),
                StatusCode::TOO_MANY_REQUESTS,
                RetryAfter::parse("3").unwrap(),
            ),
            (
                test_site!("typedWait503", Api),
                StatusCode::SERVICE_UNAVAILABLE,
                // Dates are read on the system clock: four seconds from now, a little less by
                // then.
                RetryAfter::At(SystemTime::now() + Duration::from_secs(4)),
            ),
        ] {
            let runs = AtomicU32::new(0);
            let start = Instant::now();
            let result = heal(site, || async {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    let e = HttpStatusError::new(status, Some(retry_after), "busy");
                    Err(AppError(Box::new(e)))
                } else {
                    Ok(7)
                }
            })
            .with_healer(healer())
            .await;
            assert_eq!(result.unwrap(), 7, "{status}");
            assert_eq!(runs.load(Ordering::SeqCst), 2);
            assert!(
                start.elapsed() >= Duration::from_secs(3),
                "{status}: re-run after {:?}, before the Retry-After",
                start.elapsed()
            );
        }
    }
}

#[cfg(feature = "sqlx")]
mod sqlx {
    use sqlx_core::error::Error as SqlxError;

    use super::*;

    #[test]
    fn a_pool_timeout_was_never_sent() {
        let d = diagnose(&AppError(Box::new(SqlxError::PoolTimedOut)));
        assert_eq!(d.class, ErrorClass::ResourceExhausted);
        assert!(d.never_reached);
    }

    #[test]
    fn a_missing_row_is_permanent() {
        assert_eq!(
            diagnose(&SqlxError::RowNotFound).class,
            ErrorClass::Permanent
        );
    }

    #[test]
    fn a_reset_connection_is_lost() {
        let e = SqlxError::Io(std::io::ErrorKind::ConnectionReset.into());
        assert_eq!(diagnose(&e).class, ErrorClass::ConnectionLost);
    }
}

#[cfg(feature = "tonic")]
mod tonic {
    use ::tonic::metadata::MetadataMap;
    use ::tonic::{Code, Status};

    use super::*;

    #[test]
    fn resource_exhausted_waits_the_pushback() {
        let mut metadata = MetadataMap::new();
        metadata.insert("grpc-retry-pushback-ms", "250".parse().unwrap());
        let status = Status::with_metadata(Code::ResourceExhausted, "quota", metadata);
        let d = diagnose(&AppError(Box::new(status)));
        let wait = Some(Duration::from_millis(250));
        assert_eq!(d.class, ErrorClass::RateLimited { retry_after: wait });
        assert_eq!(d.retry_after, wait);
    }

    #[test]
    fn codes() {
        for (code, class) in [
            (Code::Unavailable, ErrorClass::Transient),
            (Code::DeadlineExceeded, ErrorClass::Timeout),
            (Code::Unauthenticated, ErrorClass::AuthExpired),
            (Code::NotFound, ErrorClass::Permanent),
        ] {
            assert_eq!(diagnose(&Status::new(code, "x")).class, class, "{code:?}");
        }
    }
}

#[cfg(feature = "redis")]
mod redis {
    use ::redis::{ErrorKind, RedisError, ServerErrorKind};

    use super::*;

    #[test]
    fn kinds() {
        let busy = RedisError::from((ErrorKind::Server(ServerErrorKind::BusyLoading), "LOADING"));
        assert_eq!(diagnose(&busy).class, ErrorClass::Transient);
        let wrong = RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "ERR"));
        assert_eq!(diagnose(&wrong).class, ErrorClass::Permanent);
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let d = diagnose(&AppError(Box::new(refused)));
        assert_eq!(d.class, ErrorClass::ConnectionLost);
        assert!(d.never_reached);
    }
}

#[cfg(feature = "hyper")]
mod hyper {
    use std::net::SocketAddr;

    use ::hyper::body::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A server that reads one request head, writes `answer` raw and closes the connection.
    async fn raw_server(answer: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(answer).await;
            let _ = stream.shutdown().await;
        });
        addr
    }

    /// One GET over a bare hyper HTTP/1 connection, body read to the end.
    async fn get(addr: SocketAddr) -> Result<Bytes, ::hyper::Error> {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            ::hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let request = ::hyper::Request::get("/")
            .header("host", "loopback")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await?;
        Ok(response.into_body().collect().await?.to_bytes())
    }

    #[tokio::test]
    async fn a_connection_closed_before_the_response_is_lost() {
        let addr = raw_server(b"").await;
        let error = get(addr).await.unwrap_err();
        assert!(error.is_incomplete_message(), "{error:?}");
        assert_eq!(diagnose(&error).class, ErrorClass::ConnectionLost);
    }

    #[tokio::test]
    async fn a_connection_closed_mid_body_is_lost() {
        let addr = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial").await;
        let error = get(addr).await.unwrap_err();
        let d = diagnose(&AppError(Box::new(error)));
        assert_eq!(d.class, ErrorClass::ConnectionLost, "{}", d.reason);
    }

    #[tokio::test]
    async fn a_garbled_response_is_a_bug() {
        let addr = raw_server(b"NOT HTTP AT ALL\r\n\r\n").await;
        let error = get(addr).await.unwrap_err();
        assert!(error.is_parse(), "{error:?}");
        assert_eq!(diagnose(&error).class, ErrorClass::Bug);
    }
}
