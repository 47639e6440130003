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
        "http:api.example.com:8443",
        "http:127.0.0.1:8089",
        "http:10.0.0.5:80",
        "http:[::1]:8089",
        "http:[fd00::5]:443",
    ] {
        assert_eq!(text.parse::<Permission>().unwrap().to_string(), text);
    }
    for (written, read) in [
        ("http:API.Example.com", "http:api.example.com"),
        ("http:[::ffff:127.0.0.1]:8089", "http:127.0.0.1:8089"),
    ] {
        assert_eq!(written.parse::<Permission>().unwrap().to_string(), read);
    }
    for (bad, names) in [
        ("crm", "not a permission"),
        ("read:dealz", "not an entity kind"),
        ("field:UF X", "not a field code"),
        ("http:https://x.io", "not a host name"),
        ("http:x.io/path", "not a host name"),
        ("http:user@x.io", "not a host name"),
        ("http:x.io:0", "not a port"),
        ("http:x.io:99999", "not a port"),
        ("http:x.io:", "not a port"),
        (
            "http:localhost",
            "names this machine, which a name never reaches: a local service is reached only by its exact address and port, such as 127.0.0.1:8089",
        ),
        ("http:localhost:8089", "names this machine"),
        ("http:api.localhost", "names this machine"),
        (
            "http:127.0.0.1",
            "an address without a port: an address is approved only with its exact port, such as 127.0.0.1:8080",
        ),
        ("http:::1", "an address without a port"),
        ("http:[::1]", "an address without a port"),
        ("http:2130706433", "reads as an IP address"),
        ("http:0x7f.1", "reads as an IP address"),
        ("http:0.0.0.0:80", "no server listens on unspecified addresses"),
        ("http:[::]:80", "unspecified address"),
        ("http:255.255.255.255:80", "broadcast address"),
        ("http:224.0.0.1:80", "multicast address"),
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
        grants.call("https", "api.example.com", None).map_err(|r| r.reason),
        Err(HttpRefused::NotApproved)
    );
    assert_eq!(
        Grants::ALL.call("https", "example.com", None).map_err(|r| r.reason),
        Err(HttpRefused::NotApproved)
    );
}

/// Which requests each kind of `http:` permission lets through, and why
/// the others are refused. Pure: names are not resolved here.
#[test]
fn http_permissions_reach_their_host_and_ports_only() {
    use HttpRefused::*;
    let grants = Grants::scoped(&perms(&[
        "http:api.example.com",
        "http:hooks.example.com:8443",
        "http:127.0.0.1:8089",
        "http:[fd00::5]:8080",
    ]));
    let exact = |s: &str| Ok(HttpRoute::Exact(s.parse().unwrap()));
    let class = |a: &str, class| {
        Err(Address {
            address: a.parse().unwrap(),
            class,
        })
    };
    type Case<'a> = (&'a str, &'a str, Option<u16>, Result<HttpRoute, HttpRefused>);
    let table: &[Case] = &[
        ("http", "api.example.com", None, Ok(HttpRoute::Resolve)),
        ("https", "API.example.com", None, Ok(HttpRoute::Resolve)),
        ("http", "api.example.com", Some(80), Ok(HttpRoute::Resolve)),
        ("https", "api.example.com", Some(443), Ok(HttpRoute::Resolve)),
        ("http", "api.example.com", Some(443), Err(Port)),
        ("https", "api.example.com", Some(80), Err(Port)),
        ("http", "api.example.com", Some(8080), Err(Port)),
        ("ftp", "api.example.com", None, Err(Scheme)),
        ("file", "api.example.com", None, Err(Scheme)),
        ("http", "example.com", None, Err(NotApproved)),
        ("http", "evil-api.example.com", None, Err(NotApproved)),
        ("https", "hooks.example.com", Some(8443), Ok(HttpRoute::Resolve)),
        ("http", "hooks.example.com", Some(8443), Ok(HttpRoute::Resolve)),
        ("https", "hooks.example.com", None, Err(Port)),
        ("http", "127.0.0.1", Some(8089), exact("127.0.0.1:8089")),
        ("http", "[::ffff:127.0.0.1]", Some(8089), exact("127.0.0.1:8089")),
        ("http", "[fd00::5]", Some(8080), exact("[fd00::5]:8080")),
        (
            "http",
            "127.0.0.1",
            Some(8090),
            class("127.0.0.1", AddressClass::Loopback),
        ),
        (
            "http",
            "127.0.0.2",
            Some(8089),
            class("127.0.0.2", AddressClass::Loopback),
        ),
        ("http", "[::1]", Some(8089), class("::1", AddressClass::Loopback)),
        ("http", "localhost", Some(8089), Err(NotApproved)),
        (
            "http",
            "169.254.169.254",
            None,
            class("169.254.169.254", AddressClass::CloudMetadata),
        ),
        (
            "http",
            "[fd00:ec2::254]",
            None,
            class("fd00:ec2::254", AddressClass::CloudMetadata),
        ),
        ("http", "10.0.0.1", None, class("10.0.0.1", AddressClass::Private)),
        (
            "http",
            "[::ffff:10.0.0.1]",
            None,
            class("10.0.0.1", AddressClass::Private),
        ),
        (
            "http",
            "[64:ff9b::a00:1]",
            None,
            class("64:ff9b::a00:1", AddressClass::Private),
        ),
        ("http", "93.184.216.34", None, Err(NotApproved)),
    ];
    for (scheme, host, port, expected) in table {
        let got = grants.call(scheme, host, *port).map_err(|r| r.reason);
        assert_eq!(&got, expected, "{scheme}://{host}:{port:?}");
    }
}

#[test]
fn http_refusals_say_what_would_allow_them() {
    let grants = Grants::scoped(&perms(&["http:api.example.com"]));
    let said = |scheme: &str, host: &str, port| Denied::Http(grants.call(scheme, host, port).unwrap_err()).to_string();
    assert_eq!(
        said("http", "x.example.com", Some(8080)),
        "calling http://x.example.com:8080 over HTTP, a host no permission approves (permission \
         `http:x.example.com`, which covers ports 80 and 443, or `http:x.example.com:8080`)"
    );
    assert!(said("https", "api.example.com", Some(8443)).contains("another port needs `http:api.example.com:8443`"));
    assert_eq!(
        said("http", "[::1]", Some(8089)),
        "calling http://[::1]:8089, which is the loopback address ::1: robots reach only public addresses by \
         name; another needs its exact address and port approved (permission `http:[::1]:8089`)"
    );
    assert_eq!(
        said("gopher", "api.example.com", None),
        "calling gopher://api.example.com: robots speak only http and https"
    );
    let json = serde_json::to_value(Denied::Http(grants.call("http", "169.254.169.254", None).unwrap_err())).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"kind": "http", "what": {
            "scheme": "http", "host": "169.254.169.254", "port": 80,
            "reason": "address", "address": "169.254.169.254", "class": "cloud-metadata"
        }})
    );
    let budget = Denied::Http(HttpRefusal {
        scheme: "https".into(),
        host: "api.example.com".into(),
        port: Some(443),
        reason: HttpRefused::Budget {
            limit: HTTP_REQUESTS_LIMIT.into(),
            max: 16,
        },
    });
    assert_eq!(
        budget.to_string(),
        "calling https://api.example.com:443: more than 16 HTTP requests in one run (limit `sandbox.http-requests`)"
    );
    assert_eq!(
        serde_json::to_value(&budget).unwrap()["what"],
        serde_json::json!({"scheme": "https", "host": "api.example.com", "port": 443, "reason": "budget", "limit": "http-requests", "max": 16})
    );
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
