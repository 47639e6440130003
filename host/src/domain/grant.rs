//! What a plugin may touch: the permissions an admin approves, the grants
//! a run carries, and why the host refuses a call.
//!
//! A permission is a host capability (`crm-read`, `set-fields`...) or the
//! reach of one: the entity kinds a plugin reads (`read:deal`) and writes
//! (`write:contact`), the fields `set-fields` may change (`field:UF_SEGMENT`,
//! or `field:*` for any), the outbound HTTP hosts it names. `read:*` and
//! `write:*` reach every kind: what an admin grants a plugin installed
//! without a package.
//!
//! Outbound HTTP permissions, and what each reaches:
//! - `http:api.example.com`: the name on port 80 (http) and 443 (https);
//! - `http:api.example.com:8443`: the name on that one port, either scheme;
//! - `http:10.0.0.5:8080`, `http:[fd00::5]:8080`: that exact address and
//!   port. A literal address always names its port, and it is the only way to
//!   reach an address that is not public (loopback, private, link-local...,
//!   see [`super::address`]): a name reaches only the public addresses it
//!   resolves to. `localhost` is therefore no permission at all.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::address::{AddressClass, address_class, canonical_address};
use super::entity::{Capability, Effect};
use super::error::ValueError;
use super::kind::EntityKind;

/// One thing an admin approves, written as a string (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    Host(Capability),
    /// Reading entities of a kind; `None`: of every kind.
    Read(Option<EntityKind>),
    /// Changing entities of a kind; `None`: of every kind.
    Write(Option<EntityKind>),
    /// Setting a field; `*`: any field.
    Field(String),
    /// Calling an outbound HTTP host.
    Http(HttpTarget),
}

/// Where an `http:` permission lets a robot's requests go.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HttpTarget {
    /// A host name, lowercase: on ports 80 (http) and 443 (https), or on
    /// `port` only. It reaches only the public addresses the name resolves to.
    Name { host: String, port: Option<u16> },
    /// One exact address and port (an IPv4-mapped IPv6 address is kept as
    /// the IPv4 address it reaches), whatever its class.
    Address(SocketAddr),
}

impl fmt::Display for HttpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpTarget::Name { host, port: None } => f.write_str(host),
            HttpTarget::Name { host, port: Some(port) } => write!(f, "{host}:{port}"),
            HttpTarget::Address(address) => write!(f, "{address}"),
        }
    }
}

const LOCAL_NEEDS_ADDRESS: &str =
    "a local service is reached only by its exact address and port, such as 127.0.0.1:8089";

impl FromStr for HttpTarget {
    type Err = ValueError;
    /// `HOST`, `HOST:PORT`, `A.B.C.D:PORT` or `[IPV6]:PORT`.
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let err = |why: String| Err(ValueError::new(why));
        if s.contains("://") || s.contains('/') || s.contains('@') || s.contains('?') {
            return err(format!(
                "`{s}` is not a host name; use a name such as api.example.com, optionally with a port \
                 (api.example.com:8443), without scheme or path"
            ));
        }
        if let Ok(address) = s.parse::<SocketAddr>() {
            let ip = canonical_address(address.ip());
            let class = address_class(ip);
            if !class.is_endpoint() {
                return err(format!(
                    "`{s}`: no server listens on {class} addresses; name the service's own address"
                ));
            }
            if address.port() == 0 {
                return err(format!("`{s}`: port 0 is no port"));
            }
            return Ok(HttpTarget::Address(SocketAddr::new(ip, address.port())));
        }
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            let ip = canonical_address(ip);
            let example = SocketAddr::new(ip, 8080);
            return err(format!(
                "`{s}` is an address without a port: an address is approved only with its exact port, such as {example}"
            ));
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((host, port)) => match port.parse::<u16>() {
                Ok(port) if port > 0 => (host, Some(port)),
                _ => return err(format!("`{port}` in `{s}` is not a port (1 to 65535)")),
            },
            None => (s, None),
        };
        let host = host.to_ascii_lowercase();
        if !is_host(&host) {
            return err(format!(
                "`{s}` is not a host name; use a name such as api.example.com, optionally with a port \
                 (api.example.com:8443), without scheme or path"
            ));
        }
        if host == "localhost" || host.ends_with(".localhost") {
            return err(format!(
                "`{s}` names this machine, which a name never reaches: {LOCAL_NEEDS_ADDRESS}"
            ));
        }
        if looks_numeric(&host) {
            return err(format!(
                "`{s}` reads as an IP address, not a name; write the address in dotted form with its port, \
                 such as 10.0.0.5:8080"
            ));
        }
        Ok(HttpTarget::Name { host, port })
    }
}

/// A name whose last label is a number is an IPv4 address in some other
/// notation (`2130706433`, `0x7f.1`) to many resolvers.
fn looks_numeric(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or(host);
    last.chars().all(|c| c.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|hex| hex.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Permission {
    /// The permissions of `capabilities` with no limit on kinds and fields:
    /// what a plugin installed without a package is granted.
    pub fn unscoped(capabilities: impl IntoIterator<Item = Capability>) -> Vec<Permission> {
        let mut all: Vec<Permission> = capabilities.into_iter().map(Permission::Host).collect();
        all.extend([
            Permission::Read(None),
            Permission::Write(None),
            Permission::Field(ANY.into()),
        ]);
        all
    }
}

const ANY: &str = "*";

fn kind(k: &Option<EntityKind>) -> &'static str {
    k.map_or(ANY, EntityKind::as_str)
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Host(c) => f.write_str(c.as_str()),
            Permission::Read(k) => write!(f, "read:{}", kind(k)),
            Permission::Write(k) => write!(f, "write:{}", kind(k)),
            Permission::Field(code) => write!(f, "field:{code}"),
            Permission::Http(target) => write!(f, "http:{target}"),
        }
    }
}

impl FromStr for Permission {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let kind = |k: &str| match k {
            ANY => Ok(None),
            k => k.parse().map(Some),
        };
        match s.split_once(':') {
            None => s.parse().map(Permission::Host).map_err(|_| {
                ValueError::new(format!(
                    "`{s}` is not a permission; use a capability (crm-read, set-fields...), read:KIND, write:KIND, field:CODE, http:HOST, http:HOST:PORT or http:ADDRESS:PORT"
                ))
            }),
            Some(("read", k)) => kind(k).map(Permission::Read),
            Some(("write", k)) => kind(k).map(Permission::Write),
            Some(("field", code)) if code == ANY || is_field_code(code) => Ok(Permission::Field(code.into())),
            Some(("field", code)) => Err(ValueError::new(format!(
                "`{code}` is not a field code; use letters, digits and `_`, such as UF_SEGMENT, or `*` for any field"
            ))),
            Some(("http", target)) => target.parse().map(Permission::Http),
            Some((other, _)) => Err(ValueError::new(format!(
                "`{other}:` is not a permission; use read:, write:, field: or http:"
            ))),
        }
    }
}

/// A field code: letters, digits and `_`, not starting with a digit.
pub fn is_field_code(code: &str) -> bool {
    code.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A host name: dot-separated labels of letters, digits and `-`.
pub fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Something the host refused a plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "what")]
pub enum Denied {
    /// A host call whose capability the robot did not request or the admin did not grant.
    Capability(Capability),
    /// Reading an entity of a kind the plugin was not granted.
    Read(EntityKind),
    /// Changing an entity of a kind the plugin was not granted.
    Write(EntityKind),
    /// Setting a field the plugin was not granted.
    Field(String),
    /// An outbound HTTP request: where to, and why it was refused.
    Http(HttpRefusal),
    /// Opening a file: plugins have no filesystem.
    Filesystem,
    /// Opening a socket: plugins have no network.
    Network,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Capability(c) => write!(f, "the `{c}` capability"),
            Denied::Read(k) => write!(f, "reading {k} entities (permission `read:{k}`)", k = k.as_str()),
            Denied::Write(k) => write!(f, "changing {k} entities (permission `write:{k}`)", k = k.as_str()),
            Denied::Field(code) => write!(f, "setting the field `{code}` (permission `field:{code}`)"),
            Denied::Http(refusal) => refusal.fmt(f),
            Denied::Filesystem => f.write_str("the filesystem, which plugins do not have"),
            Denied::Network => f.write_str("the network, which plugins do not have"),
        }
    }
}

/// An outbound HTTP request the sandbox refused before sending it (or, for
/// the byte budget, while it streamed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRefusal {
    /// `http`, `https`, or the scheme refused.
    pub scheme: String,
    /// The host as the request named it: a name, or an address.
    pub host: String,
    /// The port asked for, or the scheme's default; none for an unknown scheme.
    pub port: Option<u16>,
    #[serde(flatten)]
    pub reason: HttpRefused,
}

/// Why an outbound HTTP request was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum HttpRefused {
    /// No `http:` permission names this host.
    NotApproved,
    /// The host is approved, but not on this port.
    Port,
    /// Robots speak only http and https.
    Scheme,
    /// The host is, or its name resolved to, an address of a class robots may
    /// not reach, and no permission names that exact address and port.
    Address { address: IpAddr, class: AddressClass },
    /// A per-run budget is spent: `limit` is its key under `[sandbox]`.
    Budget { limit: Cow<'static, str>, max: u64 },
}

impl HttpRefusal {
    fn target(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, bracketed(&self.host)),
            None => format!("{}://{}", self.scheme, bracketed(&self.host)),
        }
    }
}

/// An IPv6 address in brackets, as URLs and permissions write it.
fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

impl fmt::Display for HttpRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = self.target();
        let host = bracketed(&self.host);
        let port = self.port.unwrap_or(0);
        match &self.reason {
            HttpRefused::NotApproved if self.host.parse::<IpAddr>().is_ok() => write!(
                f,
                "calling {target} over HTTP, an address no permission approves (permission `http:{host}:{port}`)"
            ),
            HttpRefused::NotApproved => write!(
                f,
                "calling {target} over HTTP, a host no permission approves (permission `http:{host}`, which covers \
                 ports 80 and 443, or `http:{host}:{port}`)"
            ),
            HttpRefused::Port => write!(
                f,
                "calling {target} over HTTP on a port not approved: `http:{host}` covers port 80 for http and 443 for \
                 https; another port needs `http:{host}:{port}`"
            ),
            HttpRefused::Scheme => write!(f, "calling {target}: robots speak only http and https"),
            HttpRefused::Address { address, class } => write!(
                f,
                "calling {target}, which is the {class} address {address}: robots reach only public addresses by \
                 name; another needs its exact address and port approved (permission `http:{}`)",
                SocketAddr::new(*address, port)
            ),
            HttpRefused::Budget { limit, max } => {
                let what = if limit == HTTP_REQUESTS_LIMIT {
                    "HTTP requests"
                } else {
                    "bytes of HTTP bodies"
                };
                write!(
                    f,
                    "calling {target}: more than {max} {what} in one run (limit `sandbox.{limit}`)"
                )
            }
        }
    }
}

/// The `[sandbox]` key of the per-run request budget.
pub const HTTP_REQUESTS_LIMIT: &str = "http-requests";
/// The `[sandbox]` key of the per-run body byte budget.
pub const HTTP_BYTES_LIMIT: &str = "http-bytes";

/// Where an approved outbound request may connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpRoute {
    /// An approved name: to the addresses it resolves to, once every one of
    /// them is public.
    Resolve,
    /// An approved exact address and port: there, whatever its class.
    Exact(SocketAddr),
}

/// What a run may do: its capabilities, the kinds and fields they reach,
/// and the hosts it may call over HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grants {
    capabilities: u16,
    read: u8,
    write: u8,
    /// The fields `set-fields` may change; `None`: any.
    fields: Option<Arc<BTreeSet<String>>>,
    /// Where outbound HTTP may go; `None`: nowhere. Only `http:`
    /// permissions name them: no grant reaches every host.
    http: Option<Arc<BTreeSet<HttpTarget>>>,
}

const EVERY_KIND: u8 = u8::MAX;

fn bit(kind: EntityKind) -> u8 {
    1 << kind as u8
}

impl Grants {
    /// Every capability over every kind and field; no outbound HTTP.
    pub const ALL: Grants = Grants {
        capabilities: u16::MAX,
        read: EVERY_KIND,
        write: EVERY_KIND,
        fields: None,
        http: None,
    };
    /// No capability; each one added with [`Grants::with`] reaches every
    /// kind and field.
    pub const NONE: Grants = Grants {
        capabilities: 0,
        read: EVERY_KIND,
        write: EVERY_KIND,
        fields: None,
        http: None,
    };

    /// Exactly what `permissions` allow: no kind or field beyond those named.
    pub fn scoped<'a>(permissions: impl IntoIterator<Item = &'a Permission>) -> Grants {
        let mut grants = Grants {
            capabilities: 0,
            read: 0,
            write: 0,
            fields: Some(Arc::default()),
            http: None,
        };
        let mut fields = BTreeSet::new();
        let mut hosts = BTreeSet::new();
        let mut any_field = false;
        for permission in permissions {
            match permission {
                Permission::Host(c) => grants.capabilities |= 1 << *c as u16,
                Permission::Read(k) => grants.read |= k.map_or(EVERY_KIND, bit),
                Permission::Write(k) => grants.write |= k.map_or(EVERY_KIND, bit),
                Permission::Field(code) if code == ANY => any_field = true,
                Permission::Field(code) => {
                    fields.insert(code.clone());
                }
                Permission::Http(target) => {
                    hosts.insert(target.clone());
                }
            }
        }
        grants.fields = (!any_field).then(|| Arc::new(fields));
        grants.http = (!hosts.is_empty()).then(|| Arc::new(hosts));
        grants
    }

    pub fn contains(&self, c: Capability) -> bool {
        self.capabilities & (1 << c as u16) != 0
    }

    pub fn with(mut self, c: Capability) -> Grants {
        self.capabilities |= 1 << c as u16;
        self
    }

    /// The capabilities of both; the kinds and fields of `self`.
    pub fn intersect(&self, capabilities: &Grants) -> Grants {
        Grants {
            capabilities: self.capabilities & capabilities.capabilities,
            ..self.clone()
        }
    }

    /// Whether reading entities of `kind` is allowed.
    pub fn read(&self, kind: EntityKind) -> Result<(), Denied> {
        self.check(Capability::CrmRead)?;
        if self.read & bit(kind) == 0 {
            return Err(Denied::Read(kind));
        }
        Ok(())
    }

    /// Whether an outbound HTTP request to `scheme://host:port` is allowed,
    /// and where it may then connect. `host` is a name or an address
    /// (IPv6 with or without brackets); `port` is the one asked for or the
    /// scheme's default. A name's addresses are checked once resolved.
    pub fn call(&self, scheme: &str, host: &str, port: Option<u16>) -> Result<HttpRoute, HttpRefusal> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ip = bare.parse::<IpAddr>().ok();
        let host = match ip {
            Some(_) => bare.to_owned(),
            None => host.to_ascii_lowercase(),
        };
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => {
                return Err(HttpRefusal {
                    scheme: scheme.to_owned(),
                    host,
                    port,
                    reason: HttpRefused::Scheme,
                });
            }
        };
        let port = port.unwrap_or(default_port);
        let refuse = |host: String, reason| HttpRefusal {
            scheme: scheme.to_owned(),
            host,
            port: Some(port),
            reason,
        };
        let empty = BTreeSet::new();
        let approved = self.http.as_deref().unwrap_or(&empty);
        if let Some(ip) = ip {
            let address = SocketAddr::new(canonical_address(ip), port);
            if approved.contains(&HttpTarget::Address(address)) {
                return Ok(HttpRoute::Exact(address));
            }
            let class = address_class(address.ip());
            if class != AddressClass::Public {
                return Err(refuse(
                    host,
                    HttpRefused::Address {
                        address: address.ip(),
                        class,
                    },
                ));
            }
            let other_port = approved
                .iter()
                .any(|t| matches!(t, HttpTarget::Address(a) if a.ip() == address.ip()));
            let reason = if other_port {
                HttpRefused::Port
            } else {
                HttpRefused::NotApproved
            };
            return Err(refuse(host, reason));
        }
        let on = |port| HttpTarget::Name {
            host: host.clone(),
            port,
        };
        if approved.contains(&on(Some(port))) || (port == default_port && approved.contains(&on(None))) {
            return Ok(HttpRoute::Resolve);
        }
        let other_port = approved
            .iter()
            .any(|t| matches!(t, HttpTarget::Name { host: named, .. } if *named == host));
        let reason = if other_port {
            HttpRefused::Port
        } else {
            HttpRefused::NotApproved
        };
        Err(refuse(host, reason))
    }

    /// Whether creating an entity of `kind` is allowed.
    pub fn create(&self, kind: EntityKind) -> Result<(), Denied> {
        self.check(Capability::CreateEntity)?;
        self.write(kind)
    }

    fn check(&self, c: Capability) -> Result<(), Denied> {
        if self.contains(c) {
            Ok(())
        } else {
            Err(Denied::Capability(c))
        }
    }

    fn write(&self, kind: EntityKind) -> Result<(), Denied> {
        if self.write & bit(kind) == 0 {
            return Err(Denied::Write(kind));
        }
        Ok(())
    }

    /// Whether `effect` is allowed: its capability, the kinds it changes
    /// and the fields it sets.
    pub fn allows(&self, effect: &Effect) -> Result<(), Denied> {
        self.check(effect.capability())?;
        match effect {
            Effect::SetFields { target, fields } => {
                self.write(target.kind)?;
                if let Some(granted) = &self.fields
                    && let Some(code) = fields.keys().find(|code| !granted.contains(*code))
                {
                    return Err(Denied::Field(code.clone()));
                }
                Ok(())
            }
            Effect::MoveToStage { target, .. }
            | Effect::MoveToPipeline { target, .. }
            | Effect::ChangeResponsible { target, .. }
            | Effect::AddComment { target, .. } => self.write(target.kind),
            Effect::CreateEntity { id, .. } => self.write(id.kind),
            Effect::Link { a, b } => self.write(a.kind).and_then(|()| self.write(b.kind)),
            Effect::WaitFor { .. }
            | Effect::Notify { .. }
            | Effect::SendMessage(_)
            | Effect::KvSet { .. }
            | Effect::KvDelete { .. } => Ok(()),
        }
    }
}

impl FromIterator<Capability> for Grants {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        iter.into_iter().fold(Grants::NONE, Grants::with)
    }
}

#[cfg(test)]
mod tests;
