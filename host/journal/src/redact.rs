//! A PostgreSQL journal's URL as messages show it: its password never printed, whether in the URL's
//! user part, a `password=` parameter, or quoted back by a parser in an error. Apart from the backend
//! so `cutover status` and the errors share one rule.

/// A journal URL with its password (in the user part or a `password=` parameter) replaced by `***`:
/// how messages and `cutover status` name a PostgreSQL journal.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    // `password=…` as a query parameter or in the key=value form.
    let mut i = 0;
    while let Some(found) = out[i..].find("password=") {
        let start = i + found + "password=".len();
        let end = out[start..].find(['&', ' ']).map_or(out.len(), |e| start + e);
        out.replace_range(start..end, "***");
        i = start + 3;
    }
    out
}

/// `message` without the password `url` holds, should a parser have quoted it.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let redacted = redact(url);
    let mut out = message.replace(url, &redacted);
    // The password alone, wherever it appears.
    let password = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split(['/', '?']).next())
        .and_then(|a| a.rsplit_once('@'))
        .and_then(|(user, _)| user.split_once(':'))
        .map(|(_, p)| p.to_string())
        .filter(|p| !p.is_empty());
    if let Some(p) = password {
        out = out.replace(&p, "***");
    }
    out
}
