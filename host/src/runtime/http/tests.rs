use super::*;
use crate::domain::Permission;
use http_body_util::Full;

fn hooks(permissions: &[&str], max_bytes: u64) -> HttpHooks {
    let permissions: Vec<Permission> = permissions.iter().map(|p| p.parse().unwrap()).collect();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let config = SandboxConfig {
        http_bytes: max_bytes,
        http_hosts: [
            ("loopback.test", vec![ip("127.0.0.1")]),
            ("public.test", vec![ip("93.184.216.34"), ip("::ffff:93.184.216.35")]),
            ("mixed.test", vec![ip("93.184.216.34"), ip("10.0.0.1")]),
            ("metadata.test", vec![ip("169.254.169.254")]),
            ("nat64.test", vec![ip("64:ff9b::a9fe:a9fe")]),
            ("nowhere.test", vec![]),
        ]
        .into_iter()
        .map(|(name, ips)| (name.to_owned(), ips))
        .collect(),
        ..SandboxConfig::default()
    };
    HttpHooks::new(&config, Grants::scoped(&permissions))
}

fn body(bytes: &'static [u8]) -> WasiBody {
    Full::new(Bytes::from_static(bytes))
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn request(url: &str) -> http::Request<WasiBody> {
    http::Request::builder().uri(url).body(body(b"")).unwrap()
}

fn refusals(hooks: &HttpHooks) -> Vec<HttpRefused> {
    lock(&hooks.ledger).refused.iter().map(|r| r.reason.clone()).collect()
}

/// Resolving checks every address a name gives before any connection:
/// this test calls no connecting code at all.
#[tokio::test]
async fn a_name_reaches_only_public_addresses_every_one_checked() {
    let mut hooks = hooks(
        &[
            "http:public.test",
            "http:mixed.test",
            "http:metadata.test",
            "http:nat64.test",
            "http:nowhere.test",
        ],
        1,
    );
    let addresses = |hooks: &mut HttpHooks, url: &str| {
        let admitted = hooks.admit(&request(url)).unwrap();
        let trip = Trip {
            admitted,
            hosts: hooks.hosts.clone(),
            ledger: hooks.ledger.clone(),
            max_bytes: 1,
            deadline: tokio::time::Instant::now() + Duration::from_secs(1),
            connect: Duration::from_secs(1),
            first_byte: Duration::from_secs(1),
            between_bytes: Duration::from_secs(1),
        };
        async move { trip.addresses().await }
    };
    let public = addresses(&mut hooks, "https://public.test/x").await.unwrap();
    assert_eq!(
        public,
        Some(vec![
            "93.184.216.34:443".parse().unwrap(),
            "93.184.216.35:443".parse().unwrap()
        ])
    );
    for url in ["http://mixed.test/", "http://metadata.test/", "http://nat64.test/"] {
        assert_eq!(addresses(&mut hooks, url).await.unwrap(), None, "{url}");
    }
    let class = |address: &str, class| HttpRefused::Address {
        address: address.parse().unwrap(),
        class,
    };
    assert_eq!(
        refusals(&hooks),
        [
            class("10.0.0.1", AddressClass::Private),
            class("169.254.169.254", AddressClass::CloudMetadata),
            class("64:ff9b::a9fe:a9fe", AddressClass::CloudMetadata),
        ]
    );
    assert!(matches!(
        addresses(&mut hooks, "http://nowhere.test/").await,
        Err(Error::DnsError { .. })
    ));
}

/// A refused request never opens a connection, not even to a service
/// listening where it asked.
#[tokio::test]
async fn refused_requests_connect_nowhere() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let approved = format!("http:loopback.test:{port}");
    let mut hooks = hooks(&[&approved], 1);
    for (url, expected) in [
        (
            format!("http://loopback.test:{port}/"),
            "destination IP address is prohibited",
        ),
        (
            format!("http://127.0.0.1:{port}/"),
            "destination IP address is prohibited",
        ),
        (format!("http://localhost:{port}/"), "HTTP request denied"),
        (format!("ftp://loopback.test:{port}/"), "HTTP request denied"),
    ] {
        let sent = hooks.send_request(request(&url), None, Box::new(async { Ok(()) }));
        let error = Pin::from(sent).await.err().unwrap();
        assert_eq!(error.to_string(), expected, "{url}");
    }
    let accepted = listener.accept().map(|_| ()).map_err(|e| e.kind());
    assert_eq!(accepted, Err(std::io::ErrorKind::WouldBlock), "no connection was made");
    assert_eq!(lock(&hooks.ledger).exchanges.len(), 0, "nothing was sent");
    assert_eq!(refusals(&hooks).len(), 4);
}

/// Bodies are counted both ways against one budget per run; the one
/// crossing it fails, is recorded once, and later requests are refused.
#[tokio::test]
async fn bodies_are_metered_against_the_run_budget() {
    let mut hooks = hooks(&["http:public.test"], 8);
    let admitted = hooks.admit(&request("http://public.test/")).unwrap();
    let trip = Trip {
        admitted,
        hosts: hooks.hosts.clone(),
        ledger: hooks.ledger.clone(),
        max_bytes: 8,
        deadline: tokio::time::Instant::now() + Duration::from_secs(1),
        connect: Duration::from_secs(1),
        first_byte: Duration::from_secs(1),
        between_bytes: Duration::from_secs(1),
    };
    let sent = trip.meter(body(b"12345"), Way::Sent, 0, None).collect().await;
    assert_eq!(sent.unwrap().to_bytes().len(), 5);
    let received = trip.meter(body(b"6789"), Way::Received, 0, Some(Duration::from_secs(1)));
    assert!(matches!(
        received.collect().await,
        Err(Error::HttpResponseBodySize(Some(8)))
    ));
    let budget = HttpRefused::Budget {
        limit: HTTP_BYTES_LIMIT.into(),
        max: 8,
    };
    assert_eq!(refusals(&hooks), std::slice::from_ref(&budget));
    assert!(matches!(
        hooks.admit(&request("http://public.test/")),
        Err(Error::HttpRequestDenied)
    ));
    assert_eq!(refusals(&hooks), [budget.clone(), budget]);
}
