//! Tracking the emails robots send: each email carries a token, its links
//! are sent as redirects through the host (`/t/{token}/link/{n}`, the n-th
//! link the email holds, so the host redirects only to links its emails
//! contain), and an HTML email carries an image (`/t/{token}/open.gif`)
//! whose loading tells that it was opened. What the email was about is
//! then moved by the `email_opened` and `link_clicked` triggers.

/// The trigger code an email's open fires on the entity it was about.
pub const EMAIL_OPENED: &str = "email_opened";
/// The trigger code a click on an email's link fires.
pub const LINK_CLICKED: &str = "link_clicked";

/// The `http://` and `https://` links in a text, in order, each once.
pub fn links(body: &str) -> Vec<&str> {
    let mut found: Vec<&str> = Vec::new();
    let mut rest = body;
    while let Some(start) = ["https://", "http://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        // A sentence's full stop or a closing bracket after a link is not part of it.
        let link = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')']);
        if link.len() > "https://".len() && !found.contains(&link) {
            found.push(link);
        }
        rest = &tail[end.max(1)..];
    }
    found
}

/// The body as sent: each link replaced by its redirect through the host
/// at `base` (such as `https://crm.example.com`), and an HTML body given
/// the open-tracking image.
pub fn tracked(body: &str, base: &str, token: &str) -> String {
    let base = base.trim_end_matches('/');
    let mut out = String::with_capacity(body.len() + 128);
    let mut rest = body;
    let links = links(body);
    // Longest first, so a link that starts another is not cut out of it.
    let mut by_length: Vec<(usize, &str)> = links.iter().copied().enumerate().collect();
    by_length.sort_by_key(|(_, link)| std::cmp::Reverse(link.len()));
    while !rest.is_empty() {
        let next = by_length
            .iter()
            .filter_map(|(n, link)| rest.find(link).map(|at| (at, *n, *link)))
            .min_by_key(|(at, ..)| *at);
        let Some((at, n, link)) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..at]);
        out.push_str(&format!("{base}/t/{token}/link/{n}"));
        rest = &rest[at + link.len()..];
    }
    if is_html(body) {
        let image = format!(r#"<img src="{base}/t/{token}/open.gif" width="1" height="1" alt="">"#);
        match out.rfind("</body>") {
            Some(at) => out.insert_str(at, &image),
            None => out.push_str(&image),
        }
    }
    out
}

fn is_html(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    ["<html", "<body", "<p>", "<a ", "<br", "<div"]
        .iter()
        .any(|tag| lower.contains(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_in_order_once_without_trailing_punctuation() {
        let body = "See https://shop.example/pay?order=7, or http://a.example/x (or https://shop.example/pay?order=7).";
        assert_eq!(links(body), ["https://shop.example/pay?order=7", "http://a.example/x"]);
        let html = r#"<p><a href="https://a.example/1">one</a> <a href='https://a.example/12'>two</a></p>"#;
        assert_eq!(links(html), ["https://a.example/1", "https://a.example/12"]);
        assert!(links("no links, just https:// alone").is_empty());
    }

    #[test]
    fn a_tracked_body_sends_each_link_through_the_host() {
        let body = "Pay: https://shop.example/pay?order=7 (again: https://shop.example/pay?order=7)";
        assert_eq!(
            tracked(body, "https://crm.example/", "t0k"),
            "Pay: https://crm.example/t/t0k/link/0 (again: https://crm.example/t/t0k/link/0)"
        );
        // A link that starts another is replaced as itself.
        let body = "https://a.example/12 then https://a.example/1";
        assert_eq!(
            tracked(body, "https://crm.example", "t"),
            "https://crm.example/t/t/link/0 then https://crm.example/t/t/link/1"
        );
    }

    #[test]
    fn an_html_body_gets_the_open_tracking_image() {
        let body = r#"<html><body><p><a href="https://a.example/1">hi</a></p></body></html>"#;
        assert_eq!(
            tracked(body, "https://crm.example", "t"),
            r#"<html><body><p><a href="https://crm.example/t/t/link/0">hi</a></p><img src="https://crm.example/t/t/open.gif" width="1" height="1" alt=""></body></html>"#
        );
        assert!(!tracked("plain text", "https://crm.example", "t").contains("open.gif"));
    }
}
