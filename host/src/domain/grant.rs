//! What a plugin may touch: the permissions an admin approves, the grants
//! a run carries, and why the host refuses a call.
//!
//! A permission is a host capability (`crm-read`, `set-fields`...) or the
//! reach of one: the entity kinds a plugin reads (`read:deal`) and writes
//! (`write:contact`), the fields `set-fields` may change (`field:UF_SEGMENT`,
//! or `field:*` for any), the outbound HTTP hosts it names
//! (`http:api.example.com`). `read:*` and `write:*` reach every kind: what
//! an admin grants a plugin installed without a package.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::entity::{Capability, Effect, EntityKind};
use super::value::ValueError;

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
    Http(String),
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
            Permission::Http(host) => write!(f, "http:{host}"),
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
                    "`{s}` is not a permission; use a capability (crm-read, set-fields...), read:KIND, write:KIND, field:CODE or http:HOST"
                ))
            }),
            Some(("read", k)) => kind(k).map(Permission::Read),
            Some(("write", k)) => kind(k).map(Permission::Write),
            Some(("field", code)) if code == ANY || is_field_code(code) => Ok(Permission::Field(code.into())),
            Some(("field", code)) => Err(ValueError::new(format!(
                "`{code}` is not a field code; use letters, digits and `_`, such as UF_SEGMENT, or `*` for any field"
            ))),
            Some(("http", host)) if is_host(host) => Ok(Permission::Http(host.to_ascii_lowercase())),
            Some(("http", host)) => Err(ValueError::new(format!(
                "`{host}` is not a host name; use a name such as api.example.com, without scheme, port or path"
            ))),
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
    /// An HTTP request to a host the plugin was not granted.
    Http(String),
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
            Denied::Http(host) => write!(f, "calling {host} over HTTP (permission `http:{host}`)"),
            Denied::Filesystem => f.write_str("the filesystem, which plugins do not have"),
            Denied::Network => f.write_str("the network, which plugins do not have"),
        }
    }
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
    /// The hosts outbound HTTP may reach; `None`: none. Only `http:`
    /// permissions name them: no grant reaches every host.
    http: Option<Arc<BTreeSet<String>>>,
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
                Permission::Http(host) => {
                    hosts.insert(host.clone());
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

    /// Whether an outbound HTTP request to `host` is allowed.
    pub fn call(&self, host: &str) -> Result<(), Denied> {
        match &self.http {
            Some(hosts) if hosts.contains(&host.to_ascii_lowercase()) => Ok(()),
            _ => Err(Denied::Http(host.to_owned())),
        }
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
mod tests {
    use super::*;
    use crate::domain::{EntityRef, FieldValue, Fields, Value};

    fn perms(list: &[&str]) -> Vec<Permission> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn set(kind: EntityKind, code: &str) -> Effect {
        let mut fields = Fields::new();
        fields.insert(code.into(), FieldValue::Single(Value::Text("x".into())));
        Effect::SetFields {
            target: EntityRef { kind, id: 1 },
            fields,
        }
    }

    #[test]
    fn permissions_read_back_as_written() {
        for text in [
            "crm-read",
            "read:deal",
            "write:*",
            "field:UF_SEGMENT",
            "field:*",
            "http:api.example.com",
        ] {
            assert_eq!(text.parse::<Permission>().unwrap().to_string(), text);
        }
        for (bad, names) in [
            ("crm", "not a permission"),
            ("read:dealz", "not an entity kind"),
            ("field:UF X", "not a field code"),
            ("http:https://x.io", "not a host name"),
            ("net:x", "`net:` is not a permission"),
        ] {
            let e = bad.parse::<Permission>().unwrap_err().to_string();
            assert!(e.contains(names), "{bad}: {e}");
        }
    }

    #[test]
    fn scoped_grants_reach_only_the_kinds_and_fields_named() {
        let grants = Grants::scoped(&perms(&[
            "crm-read",
            "set-fields",
            "read:contact",
            "write:contact",
            "field:UF_SEGMENT",
        ]));
        assert_eq!(grants.read(EntityKind::Contact), Ok(()));
        assert_eq!(grants.read(EntityKind::Deal), Err(Denied::Read(EntityKind::Deal)));
        assert_eq!(grants.allows(&set(EntityKind::Contact, "UF_SEGMENT")), Ok(()));
        assert_eq!(
            grants.allows(&set(EntityKind::Contact, "TITLE")),
            Err(Denied::Field("TITLE".into()))
        );
        assert_eq!(
            grants.allows(&set(EntityKind::Deal, "UF_SEGMENT")),
            Err(Denied::Write(EntityKind::Deal))
        );
        let moved = Effect::MoveToStage {
            target: EntityRef {
                kind: EntityKind::Contact,
                id: 1,
            },
            stage: "WON".into(),
        };
        assert_eq!(grants.allows(&moved), Err(Denied::Capability(Capability::MoveStage)));
        assert_eq!(
            grants.call("api.example.com"),
            Err(Denied::Http("api.example.com".into()))
        );
        let calling = Grants::scoped(&perms(&["http:api.example.com"]));
        assert_eq!(calling.call("API.example.com"), Ok(()));
        assert_eq!(calling.call("example.com"), Err(Denied::Http("example.com".into())));
        assert_eq!(Grants::ALL.call("example.com"), Err(Denied::Http("example.com".into())));
    }

    #[test]
    fn unscoped_grants_reach_every_kind_and_field() {
        let grants = Grants::scoped(&Permission::unscoped([Capability::SetFields]));
        assert_eq!(grants.allows(&set(EntityKind::Deal, "TITLE")), Ok(()));
        assert_eq!(
            grants.read(EntityKind::Deal),
            Err(Denied::Capability(Capability::CrmRead))
        );
        assert_eq!(
            Grants::NONE
                .with(Capability::SetFields)
                .allows(&set(EntityKind::Lead, "X")),
            Ok(())
        );
    }
}
