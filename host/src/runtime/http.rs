//! Outbound HTTP of one run (`wasi:http`): where a robot's request may go,
//! how it gets there, and what a run may spend on it.
//!
//! Each request passes, in order: the run's request budget
//! (`sandbox.http-requests`), the scheme (http and https only), an `http:`
//! permission for its host and port ([`Grants::call`]). An approved exact
//! address is connected to as it is. An approved name is resolved here
//! (`SandboxConfig::http_hosts` first, then the system resolver), every address it
//! resolves to must be public ([`address_class`]), and the connection goes
//! to one of exactly those addresses: the name is never resolved a second
//! time. TLS verifies the certificate against the name asked for. Bodies are
//! metered both ways as they stream (`sandbox.http-bytes`), and every wait
//! ends when the run's time does.
//!
//! Every refusal is recorded as a [`Denied::Http`] with its reason, every
//! request sent as an `http` line of the run log.
//!
//! Must not: connect anywhere before the address is checked; follow
//! redirects (a hop is a new request of the guest's, checked on its own);
//! depend on whether the linker is sync or async (the hooks only hand back
//! futures).

use std::collections::BTreeMap;
use std::future::{Future, poll_fn};
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::SandboxConfig;
use super::outcome::{Denial, Denied, LogLevel, LogLine};
use crate::domain::{
    AddressClass, Grants, HTTP_BYTES_LIMIT, HTTP_REQUESTS_LIMIT, HttpRefusal, HttpRefused, HttpRoute, address_class,
    canonical_address,
};

/// The call every outbound HTTP refusal is recorded against.
const CALL: &str = "wasi:http/outgoing-handler.handle";

/// The longest path kept of a request in the run log.
const LOGGED_PATH_CHARS: usize = 200;

type Sent = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Answer = Box<dyn Future<Output = Result<(http::Response<WasiBody>, Sent), Error>> + Send>;

/// The outbound HTTP of one run.
pub(super) struct HttpHooks {
    grants: Grants,
    deadline: Instant,
    max_requests: u32,
    max_bytes: u64,
    hosts: Arc<BTreeMap<String, Vec<IpAddr>>>,
    /// Shared with the requests in flight, which run as tasks of their own.
    ledger: Arc<Mutex<Ledger>>,
}

/// What a run's requests spent and what the run record will say of them.
#[derive(Default)]
struct Ledger {
    attempts: u32,
    bytes: u64,
    bytes_spent: bool,
    refused: Vec<HttpRefusal>,
    exchanges: Vec<Exchange>,
}

/// One request sent, for the run log.
struct Exchange {
    method: http::Method,
    /// Scheme, host, port and path: no query, no user information.
    url: String,
    status: Option<u16>,
    failure: Option<String>,
    sent: u64,
    received: u64,
}

fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A request that passed its checks before any lookup.
struct Admitted {
    route: HttpRoute,
    https: bool,
    /// The name or address asked for, lowercase, IPv6 without brackets.
    host: String,
    port: u16,
    url: String,
}

impl Admitted {
    fn refusal(&self, reason: HttpRefused) -> HttpRefusal {
        HttpRefusal {
            scheme: if self.https { "https" } else { "http" }.into(),
            host: self.host.clone(),
            port: Some(self.port),
            reason,
        }
    }
}

impl HttpHooks {
    /// The outbound HTTP of a run starting now.
    pub(super) fn new(config: &SandboxConfig, grants: Grants) -> Self {
        HttpHooks {
            grants,
            deadline: Instant::now() + config.wall_time(),
            max_requests: config.http_requests,
            max_bytes: config.http_bytes,
            hosts: Arc::new(config.http_hosts.clone()),
            ledger: Arc::default(),
        }
    }

    /// Moves the refusals and the requests so far into the run record: the
    /// refusals as denials, the requests as `http` log lines. Called once,
    /// when the run has ended.
    pub(super) fn settle(&mut self, denials: &mut Vec<Denial>, logs: &mut Vec<LogLine>) {
        let mut ledger = lock(&self.ledger);
        denials.extend(ledger.refused.drain(..).map(|refusal| Denial {
            denied: Denied::Http(refusal),
            call: CALL.into(),
        }));
        logs.extend(ledger.exchanges.drain(..).map(|e| {
            let answer = match (e.status, &e.failure) {
                (Some(status), None) => status.to_string(),
                (Some(status), Some(failure)) => format!("{status}, then failed: {failure}"),
                (None, Some(failure)) => format!("failed: {failure}"),
                (None, None) => "no answer when the run ended".into(),
            };
            LogLine {
                level: LogLevel::Http,
                message: format!(
                    "{} {}: {answer}; {} B sent, {} B received",
                    e.method, e.url, e.sent, e.received
                ),
            }
        }));
    }

    /// The checks made before anything leaves the host: the budgets, the
    /// scheme, the permission.
    fn admit(&mut self, request: &http::Request<WasiBody>) -> Result<Admitted, Error> {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
        let asked = uri.host().unwrap_or_default();
        let host = asked.trim_matches(['[', ']']).to_ascii_lowercase();
        let https = scheme == "https";
        let port = uri.port_u16().or(match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        });
        let mut ledger = lock(&self.ledger);
        ledger.attempts = ledger.attempts.saturating_add(1);
        let budget = if ledger.attempts > self.max_requests {
            // Recorded once: the refusals after it would only repeat it.
            let first = ledger.attempts == self.max_requests.saturating_add(1);
            Some((HTTP_REQUESTS_LIMIT, u64::from(self.max_requests), first))
        } else if ledger.bytes_spent {
            Some((HTTP_BYTES_LIMIT, self.max_bytes, true))
        } else {
            None
        };
        if let Some((limit, max, record)) = budget {
            if record {
                ledger.refused.push(HttpRefusal {
                    scheme,
                    host,
                    port,
                    reason: HttpRefused::Budget {
                        limit: limit.into(),
                        max,
                    },
                });
            }
            return Err(Error::HttpRequestDenied);
        }
        let route = match self.grants.call(&scheme, asked, uri.port_u16()) {
            Ok(route) => route,
            Err(refusal) => {
                let error = match refusal.reason {
                    HttpRefused::Address { .. } => Error::DestinationIpProhibited,
                    _ => Error::HttpRequestDenied,
                };
                ledger.refused.push(refusal);
                return Err(error);
            }
        };
        let port = port.unwrap_or(if https { 443 } else { 80 });
        let mut path: String = uri.path().chars().take(LOGGED_PATH_CHARS).collect();
        if path.is_empty() {
            path.push('/');
        }
        let shown = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        Ok(Admitted {
            route,
            https,
            url: format!("{scheme}://{shown}:{port}{path}"),
            host,
            port,
        })
    }
}

impl WasiHttpHooks for HttpHooks {
    /// Every scheme reaches `send_request`, where its refusal is recorded
    /// with the host asked for.
    fn is_supported_scheme(&mut self, _scheme: &http::uri::Scheme) -> bool {
        true
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Sent,
    ) -> Answer {
        let admitted = match self.admit(&request) {
            Ok(admitted) => admitted,
            Err(error) => return Box::new(async move { Err(error) }),
        };
        // The host waits here outside wasm, where the epoch deadline cannot
        // stop it: every wait is capped by the time the run has left.
        let left = self.deadline.saturating_duration_since(Instant::now());
        let cap = |asked: Option<Duration>| asked.map_or(left, |t| t.min(left));
        let options = options.unwrap_or_default();
        let trip = Trip {
            admitted,
            hosts: self.hosts.clone(),
            ledger: self.ledger.clone(),
            max_bytes: self.max_bytes,
            deadline: tokio::time::Instant::from_std(self.deadline),
            connect: cap(options.connect_timeout),
            first_byte: cap(options.first_byte_timeout),
            between_bytes: cap(options.between_bytes_timeout),
        };
        Box::new(trip.go(request))
    }
}

/// One admitted request on its way.
struct Trip {
    admitted: Admitted,
    hosts: Arc<BTreeMap<String, Vec<IpAddr>>>,
    ledger: Arc<Mutex<Ledger>>,
    max_bytes: u64,
    deadline: tokio::time::Instant,
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl Trip {
    async fn go(self, request: http::Request<WasiBody>) -> Result<(http::Response<WasiBody>, Sent), Error> {
        let Some(addresses) = self.addresses().await? else {
            return Err(Error::DestinationIpProhibited);
        };
        let index = {
            let mut ledger = lock(&self.ledger);
            ledger.exchanges.push(Exchange {
                method: request.method().clone(),
                url: self.admitted.url.clone(),
                status: None,
                failure: None,
                sent: 0,
                received: 0,
            });
            ledger.exchanges.len() - 1
        };
        let ledger = self.ledger.clone();
        let answer = tokio::time::timeout_at(self.deadline, self.exchange(request, addresses, index))
            .await
            .unwrap_or(Err(Error::ConnectionTimeout));
        let mut ledger = lock(&ledger);
        if let Some(e) = ledger.exchanges.get_mut(index) {
            match &answer {
                Ok((response, _)) => e.status = Some(response.status().as_u16()),
                Err(error) => e.failure = Some(error.to_string()),
            }
        }
        answer
    }

    /// Where the request may connect: the approved exact address, or every
    /// address the name resolves to, once each one is public. `None`: one is
    /// not, and the refusal is recorded.
    async fn addresses(&self) -> Result<Option<Vec<SocketAddr>>, Error> {
        let (host, port) = (&self.admitted.host, self.admitted.port);
        let found: Vec<SocketAddr> = match self.admitted.route {
            HttpRoute::Exact(address) => return Ok(Some(vec![address])),
            HttpRoute::Resolve => match self.hosts.get(host) {
                Some(fixed) => fixed.iter().map(|ip| SocketAddr::new(*ip, port)).collect(),
                None => tokio::time::timeout_at(self.deadline, tokio::net::lookup_host((host.as_str(), port)))
                    .await
                    .map_err(|_| Error::DnsTimeout)?
                    .map_err(|e| Error::DnsError {
                        rcode: Some(e.to_string()),
                        info_code: None,
                    })?
                    .collect(),
            },
        };
        let mut checked = Vec::with_capacity(found.len());
        for address in found {
            let ip = canonical_address(address.ip());
            let class = address_class(ip);
            if class != AddressClass::Public {
                let refusal = self.admitted.refusal(HttpRefused::Address { address: ip, class });
                lock(&self.ledger).refused.push(refusal);
                return Ok(None);
            }
            checked.push(SocketAddr::new(ip, port));
        }
        if checked.is_empty() {
            return Err(Error::DnsError {
                rcode: Some(format!("{host} has no address")),
                info_code: None,
            });
        }
        Ok(Some(checked))
    }

    /// Connects to one of the checked addresses and nowhere else, speaks TLS
    /// to the name asked for, sends the request with its body metered, and
    /// waits for the response's head.
    async fn exchange(
        self,
        request: http::Request<WasiBody>,
        addresses: Vec<SocketAddr>,
        index: usize,
    ) -> Result<(http::Response<WasiBody>, Sent), Error> {
        let mut failure = Error::ConnectionRefused;
        let mut connected = None;
        for address in addresses {
            match tokio::time::timeout(self.connect, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => {
                    connected = Some(stream);
                    break;
                }
                Ok(Err(e)) => failure = Error::Connect(e),
                Err(_) => failure = Error::ConnectionTimeout,
            }
        }
        let stream = connected.ok_or(failure)?;
        let stream: Box<dyn Stream> = if self.admitted.https {
            let name = match self.admitted.host.parse::<IpAddr>() {
                Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
                Err(_) => rustls::pki_types::ServerName::try_from(self.admitted.host.clone())?,
            };
            let connector = tokio_rustls::TlsConnector::from(tls_config()?);
            let tls = tokio::time::timeout(self.connect, connector.connect(name, stream))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
            Box::new(tls)
        } else {
            Box::new(stream)
        };
        let (mut sender, conn) = tokio::time::timeout(
            self.connect,
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;

        // The request line names only the path: scheme and authority went
        // into the connection and the `host` header.
        let (mut parts, body) = request.into_parts();
        let path = match parts.uri.path_and_query() {
            Some(p) if !p.as_str().is_empty() => p.clone(),
            _ => http::uri::PathAndQuery::from_static("/"),
        };
        parts.uri = http::Uri::from(path);
        let body = self.meter(body, Way::Sent, index, None);
        let request = http::Request::from_parts(parts, body);

        let first_byte = self.first_byte;
        let send = async move {
            tokio::time::timeout(first_byte, sender.send_request(request))
                .await
                .map_err(|_| Error::ConnectionReadTimeout)?
                .map_err(Error::from)
        };
        let mut send = pin!(send);
        let mut conn = Some(conn);
        // Drive the connection while waiting for the response.
        let response = poll_fn(|cx| match send.as_mut().poll(cx) {
            Poll::Ready(answer) => Poll::Ready(answer),
            Poll::Pending => {
                let Some(io) = conn.as_mut() else {
                    return Poll::Pending;
                };
                let ended = ready!(Pin::new(io).poll(cx));
                conn = None;
                match ended {
                    Ok(()) => send.as_mut().poll(cx),
                    Err(e) => Poll::Ready(Err(Error::from(e))),
                }
            }
        })
        .await?;
        let deadline = self.deadline;
        let io = async move {
            let Some(conn) = conn.take() else {
                return Ok(());
            };
            match tokio::time::timeout_at(deadline, conn).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) if e.is_timeout() => Err(Error::HttpResponseTimeout),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(Error::ConnectionReadTimeout),
            }
        };
        let stall = Some(self.between_bytes);
        let response = response.map(|incoming| {
            let incoming = incoming
                .map_err(|e| {
                    if e.is_timeout() {
                        Error::HttpResponseTimeout
                    } else {
                        Error::from(e)
                    }
                })
                .boxed_unsync();
            self.meter(incoming, Way::Received, index, stall).boxed_unsync()
        });
        Ok((response, Box::new(io) as Sent))
    }

    fn meter(&self, body: WasiBody, way: Way, index: usize, stall: Option<Duration>) -> Metered {
        Metered {
            inner: body,
            way,
            index,
            ledger: self.ledger.clone(),
            max_bytes: self.max_bytes,
            budget: self.admitted.refusal(HttpRefused::Budget {
                limit: HTTP_BYTES_LIMIT.into(),
                max: self.max_bytes,
            }),
            stall: stall.map(|wait| {
                let deadline = self.deadline;
                let at = (tokio::time::Instant::now() + wait).min(deadline);
                (wait, Box::pin(tokio::time::sleep_until(at)))
            }),
            deadline: self.deadline,
            ended: false,
        }
    }
}

/// A byte stream a request goes over: TCP, or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// One client configuration per process: the webpki roots, ring.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|builder| Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| Error::InternalError(Some(format!("TLS configuration: {e}"))))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    Sent,
    Received,
}

/// A body counted against the run's byte budget as it streams; a response
/// body also ends when it stalls longer than its between-bytes wait or the
/// run's time is up.
struct Metered {
    inner: WasiBody,
    way: Way,
    index: usize,
    ledger: Arc<Mutex<Ledger>>,
    max_bytes: u64,
    /// The refusal to record when the budget is crossed.
    budget: HttpRefusal,
    stall: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    deadline: tokio::time::Instant,
    ended: bool,
}

impl Metered {
    /// Ends the body with `error`, noted against its request.
    fn fail(&mut self, error: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.ended = true;
        if let Some(e) = lock(&self.ledger).exchanges.get_mut(self.index) {
            e.failure = Some(error.to_string());
        }
        Poll::Ready(Some(Err(error)))
    }

    /// Counts `n` bytes; `false` once the run's budget is crossed.
    fn count(&mut self, n: u64) -> bool {
        let mut ledger = lock(&self.ledger);
        ledger.bytes = ledger.bytes.saturating_add(n);
        if let Some(e) = ledger.exchanges.get_mut(self.index) {
            match self.way {
                Way::Sent => e.sent += n,
                Way::Received => e.received += n,
            }
        }
        if ledger.bytes <= self.max_bytes {
            return true;
        }
        if !ledger.bytes_spent {
            ledger.bytes_spent = true;
            ledger.refused.push(self.budget.clone());
        }
        false
    }

    fn over_budget(&self) -> Error {
        match self.way {
            Way::Sent => Error::HttpRequestBodySize(Some(self.max_bytes)),
            Way::Received => Error::HttpResponseBodySize(Some(self.max_bytes)),
        }
    }
}

impl Body for Metered {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |data| data.len() as u64);
                if !this.count(n) {
                    let error = this.over_budget();
                    return this.fail(error);
                }
                if let Some((wait, sleep)) = &mut this.stall {
                    let at = (tokio::time::Instant::now() + *wait).min(this.deadline);
                    sleep.as_mut().reset(at);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => {
                if let Some((_, sleep)) = &mut this.stall
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    return this.fail(Error::ConnectionReadTimeout);
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
