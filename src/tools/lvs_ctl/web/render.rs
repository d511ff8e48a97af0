//! The page, from a [`Snapshot`]: pure, so that it is tested without a web server.
//! Every string that came from outside (node names and what they hold — other nodes
//! sent those —, service and host names, mon-check's summaries) goes through [`esc`],
//! the one escaping function; the JSON form is serde's. The inline script and style
//! are constants, allowed by their hashes in the Content-Security-Policy, and carry no
//! data: the script fetches `?format=json` and puts its `html` (rendered here, by the
//! same code) in place.

use super::snapshot::{Cluster, Part, Snapshot};
use crate::table::{LinkState, NodeRecord};
use crate::tools::lvs_ctl::status::{RealView, Report, ServiceView};
use crate::tools::mon_check::sched::ctl::{self, ServiceStatus, StatusList};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// HTML-escape text for an element's content or a quoted attribute value.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // NUL and other controls but tab and newline show as the replacement mark.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{font:16px/1.4 system-ui,sans-serif;margin:0 auto;max-width:70em;padding:.5em;color:#111;background:#fff}\
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.15em;margin:1em 0 .3em}h3{font-size:1em;margin:.8em 0 .2em}\
table{width:100%;border-collapse:collapse;table-layout:fixed;margin-bottom:.8em}\
th,td{border-bottom:1px solid #ccc;padding:.3em .25em;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
th{background:#eee;font-size:.9em;overflow-wrap:normal}form{display:inline;margin:0}button{font-size:.9em;padding:.25em .5em;max-width:100%;overflow-wrap:anywhere}\
.up,.ok,.in{color:#065f06}.down,.dead,.failing,.removed{color:#a00}.quiesced,.draining,.maintenance,.late{color:#a60}\
.meta,.note{color:#555;font-size:.9em}.err{color:#a00}#result{background:#eef;padding:.3em}\
#stale{color:#a00}small{color:#555}\
.w13{width:13%}.w16{width:16%}.w19{width:19%}.w18{width:18%}.w21{width:21%}.w22{width:22%}\
.w26{width:26%}.w30{width:30%}.w31{width:31%}.w38{width:38%}";

/// Fetch the JSON every 2 s and put its `html` in place; a failed fetch marks the page
/// stale and the next one tries again. Not while a finger or button is down (a press
/// that began on a button the refresh replaced would be no click). No data in here:
/// it is all in the fetched JSON.
const SCRIPT: &str =
    "(function(){var live=document.getElementById('live'),stale=document.getElementById('stale'),down=0;\
document.addEventListener('pointerdown',function(){down=1;});\
document.addEventListener('pointerup',function(){setTimeout(function(){down=0;},300);});\
var url=location.protocol+'//'+location.host+location.pathname+'?format=json';\
function tick(){fetch(url,{credentials:'same-origin',cache:'no-store'})\
.then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.json();})\
.then(function(j){if(!down)live.innerHTML=j.html;stale.hidden=true;})\
.catch(function(){stale.hidden=false;})\
.then(function(){setTimeout(tick,2000);});}\
setTimeout(tick,2000);})();";

fn csp_hash(s: &str) -> String {
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
    )
}

/// The Content-Security-Policy of the page: nothing but its own script and style, its
/// own JSON, its own forms.
pub fn csp() -> String {
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'",
        csp_hash(SCRIPT),
        csp_hash(STYLE)
    )
}

/// What the forms need: where to post, and the token (None: no authenticated user,
/// no actions).
pub struct Forms<'a> {
    pub script: &'a str,
    pub token: Option<&'a str>,
}

impl Forms<'_> {
    fn button(&self, fields: &[(&str, &str)], label: &str) -> String {
        let Some(token) = self.token else {
            return String::new();
        };
        let mut s = format!(
            "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"token\" value=\"{}\">",
            esc(self.script),
            esc(token)
        );
        for (k, v) in fields {
            let _ = write!(s, "<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(k), esc(v));
        }
        let _ = write!(s, "<button type=\"submit\">{}</button></form>", esc(label));
        s
    }
}

/// The whole page.
pub fn page(snap: &Snapshot, forms: &Forms, result: Option<&str>) -> String {
    let title = match &snap.cluster {
        Part::Ok(c) if !c.local.is_empty() => format!("hakit cluster: {}", c.local),
        _ => "hakit cluster".to_string(),
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style>\
         <noscript><meta http-equiv=\"refresh\" content=\"10\"></noscript></head><body>\
         <h1>{t}</h1>",
        t = esc(&title)
    );
    if let Some(r) = result {
        let _ = write!(s, "<p id=\"result\" role=\"status\">{}</p>", esc(r));
    }
    s.push_str("<p id=\"stale\" hidden>The page could not be refreshed: what it shows may be old.</p>");
    let _ = writeln!(
        s,
        "<div id=\"live\">{}</div><script>{SCRIPT}</script></body></html>",
        fragment(snap, forms)
    );
    s
}

/// The part the live refresh replaces.
pub fn fragment(snap: &Snapshot, forms: &Forms) -> String {
    let mut s = String::new();
    let _ = write!(s, "<p class=\"meta\">As of {}", esc(&snap.generated));
    match &snap.user {
        Some(u) => {
            let _ = write!(s, "; signed in as {}", esc(u));
        }
        None => s.push_str("; not signed in: the actions need the web server's authentication"),
    }
    s.push_str(".</p>");
    s.push_str("<h2>Nodes</h2>");
    match &snap.cluster {
        Part::Ok(c) => cluster(&mut s, c),
        Part::Error(e) => error(&mut s, e),
    }
    s.push_str("<h2>Virtual services</h2>");
    match &snap.lvs {
        Part::Ok(r) => lvs(&mut s, r, snap, forms),
        Part::Error(e) => error(&mut s, e),
    }
    s.push_str("<h2>Watched services</h2>");
    match &snap.mon {
        Part::Ok(m) => mon(&mut s, m, forms),
        Part::Error(e) => error(&mut s, e),
    }
    s
}

/// Column widths in per cent (classes of STYLE: the policy allows no style
/// attribute): with a fixed layout the tables fit any screen, and the
/// addresses get the room to stay on one line on a phone.
fn cols(s: &mut String, widths: &[u8]) {
    s.push_str("<colgroup>");
    for w in widths {
        let _ = write!(s, "<col class=\"w{w}\">");
    }
    s.push_str("</colgroup>");
}

fn error(s: &mut String, e: &str) {
    let _ = write!(s, "<p class=\"err\">{}</p>", esc(e));
}

fn cluster(s: &mut String, c: &Cluster) {
    if !c.writer_alive {
        let _ = write!(
            s,
            "<p class=\"err\">No hb-watch holds {}: what follows is stale.</p>",
            esc(&c.table)
        );
    }
    for slot in &c.torn {
        let _ = write!(s, "<p class=\"err\">Record {slot} is half written; unreadable.</p>");
    }
    s.push_str("<table id=\"nodes\">");
    cols(s, &[22, 18, 38, 22]);
    s.push_str("<thead><tr><th>Node</th><th>State</th><th>Links</th><th>Holds</th></tr></thead><tbody>");
    for r in c.records.iter().filter(|r| !r.is_ping()) {
        node_row(s, r, &c.channels, c.now_mono_ns);
    }
    s.push_str("</tbody></table>");
    let pings: Vec<&NodeRecord> = c.records.iter().filter(|r| r.is_ping()).collect();
    if !pings.is_empty() {
        s.push_str("<p class=\"note\">Ping nodes: ");
        let list: Vec<String> = pings
            .iter()
            .map(|p| {
                format!(
                    "{} <span class=\"{st}\">{st}</span>",
                    esc(&p.name),
                    st = p.state.as_str()
                )
            })
            .collect();
        s.push_str(&list.join(", "));
        s.push_str("</p>");
    }
}

fn node_row(s: &mut String, r: &NodeRecord, channels: &[String], now: u64) {
    let st = r.state.as_str();
    let _ = write!(s, "<tr><td>{}", esc(&r.name));
    if r.is_local() {
        s.push_str(" <small>(this node)</small>");
    }
    let _ = write!(s, "</td><td class=\"{st}\">{st}");
    if !r.status.is_empty() {
        let _ = write!(s, "<br><small>{}</small>", esc(&r.status));
    }
    s.push_str("</td><td>");
    if r.is_local() {
        s.push('-');
    } else {
        let links: Vec<String> = channels
            .iter()
            .enumerate()
            .map(|(i, ch)| {
                let l = &r.links[i];
                let ls = l.state.as_str();
                let mut t = format!("{}: <span class=\"{ls}\">{ls}</span>", esc(ch), ls = ls);
                if l.state != LinkState::default() || l.last_heard_ns != 0 {
                    let _ = write!(
                        t,
                        " <small>{}",
                        crate::tools::hb_watch::status::age(now, l.last_heard_ns)
                    );
                    if l.lost > 0 {
                        let _ = write!(t, ", {} lost", l.lost);
                    }
                    t.push_str("</small>");
                }
                t
            })
            .collect();
        s.push_str(&links.join("<br>"));
    }
    s.push_str("</td><td>");
    if r.held.is_empty() {
        s.push('-');
    } else {
        let held: Vec<String> = r.held.split(',').map(esc).collect();
        s.push_str(&held.join("<br>"));
    }
    if r.pings_total > 0 {
        let _ = write!(s, "<br><small>pings {}/{}</small>", r.pings_up, r.pings_total);
    }
    s.push_str("</td></tr>");
}

fn lvs(s: &mut String, r: &Report, snap: &Snapshot, forms: &Forms) {
    let _ = write!(s, "<p class=\"meta\">Backend {}", esc(r.backend));
    match &r.follower {
        Some(f) => {
            let _ = write!(s, "; followed by pid {} since {}", f.pid, esc(&f.since));
        }
        None => s.push_str("; no follower running: health not known"),
    }
    if snap.maintenance_dir.is_none() {
        s.push_str("; no maintenance-dir configured: drain and enable are off");
    }
    s.push_str(".</p>");
    if r.services.is_empty() {
        s.push_str("<p class=\"note\">No virtual services.</p>");
    }
    for sv in &r.services {
        service(s, sv, snap, forms);
    }
}

fn service(s: &mut String, sv: &ServiceView, snap: &Snapshot, forms: &Forms) {
    let _ = write!(s, "<h3>{} <small>{}", esc(&sv.service), esc(&sv.scheduler));
    if !sv.configured {
        s.push_str(", not in the configuration");
    } else if !sv.in_kernel {
        s.push_str(", not in the kernel");
    }
    if let Some(c) = &sv.check {
        let _ = write!(s, ", check {}", esc(c));
    }
    let _ = write!(s, ", live weight {}</small></h3>", sv.live_weight);
    s.push_str("<table class=\"reals\">");
    cols(s, &[31, 16, 19, 13, 21]);
    s.push_str(
        "<thead><tr><th>Real server</th><th>Weight</th><th>Health</th>\
         <th>Conns</th><th></th></tr></thead><tbody>",
    );
    for rv in &sv.reals {
        real_row(s, rv, snap, forms);
    }
    if let Some(sorry) = &sv.sorry {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>-</td><td>sorry server, {}</td><td></td><td></td></tr>",
            esc(&sorry.real),
            if sorry.in_kernel { "in" } else { "out" }
        );
    }
    s.push_str("</tbody></table>");
}

fn opt(v: Option<u32>) -> String {
    v.map_or("-".into(), |x| x.to_string())
}

fn real_row(s: &mut String, rv: &RealView, snap: &Snapshot, forms: &Forms) {
    let _ = write!(s, "<tr data-real=\"{}\"><td>{}", esc(&rv.real), esc(&rv.real));
    if let Some(h) = rv.host.as_deref().filter(|h| !rv.real.starts_with(&format!("{h}:"))) {
        let _ = write!(s, "<br><small>{}</small>", esc(h));
    }
    let _ = write!(
        s,
        "</td><td class=\"weight\">{}<br><small>kernel {}</small></td>",
        opt(rv.weight),
        opt(rv.kernel_weight)
    );
    let (class, text) = match (rv.health, rv.state) {
        (Some(h), Some("in")) => (h, h.to_string()),
        (Some(h), Some(st)) => (st, format!("{h}, {st}")),
        _ if rv.weight.is_none() => ("", "not in the configuration".to_string()),
        _ => ("", "not known".to_string()),
    };
    let _ = write!(s, "<td class=\"{class}\">{}", esc(&text));
    if let Some(why) = &rv.reason {
        let _ = write!(s, "<br><small>{}</small>", esc(why));
    }
    if let Some(f) = &rv.file {
        let _ = write!(s, "<br><small>file {}</small>", esc(f));
    }
    let _ = write!(s, "</td><td>{} / {}</td><td>", rv.active, rv.inactive);
    if rv.weight.is_some() && snap.maintenance_dir.is_some() {
        let drained = snap.drained.iter().any(|d| d == &rv.real);
        let (action, label) = if drained {
            ("enable", "enable")
        } else {
            ("drain", "drain")
        };
        s.push_str(&forms.button(&[("action", action), ("real", &rv.real)], label));
    }
    s.push_str("</td></tr>");
}

fn mon(s: &mut String, m: &StatusList, forms: &Forms) {
    if m.services.is_empty() {
        s.push_str("<p class=\"note\">mon-check watches nothing.</p>");
        return;
    }
    s.push_str("<table id=\"watched\">");
    cols(s, &[30, 22, 22, 26]);
    s.push_str("<thead><tr><th>Service</th><th>State</th><th>Hosts</th><th></th></tr></thead><tbody>");
    for svc in &m.services {
        mon_row(s, svc, forms);
    }
    s.push_str("</tbody></table>");
}

fn mon_row(s: &mut String, svc: &ServiceStatus, forms: &Forms) {
    let key = format!("{}/{}", svc.group, svc.service);
    let _ = write!(s, "<tr data-service=\"{}\"><td>{}", esc(&key), esc(&key));
    if !svc.description.is_empty() {
        let _ = write!(s, "<br><small>{}</small>", esc(&svc.description));
    }
    let _ = write!(s, "</td><td class=\"{st}\">{st}", st = esc(&svc.state));
    if let Some(a) = &svc.ack {
        let _ = write!(s, "<br><small>acknowledged: {}</small>", esc(&a.comment));
    }
    let since = ctl::when(svc.since);
    if since != "-" {
        let _ = write!(s, "<br><small>since {}</small>", esc(&since));
    }
    if !svc.summary.is_empty() {
        let _ = write!(s, "<br><small>{}</small>", esc(&svc.summary));
    }
    s.push_str("</td><td>");
    let hosts: Vec<String> = svc
        .hosts
        .iter()
        .map(|h| {
            let st = match (&h.status, h.disabled) {
                (_, true) => "disabled".to_string(),
                (Some(x), _) => x.to_string(),
                (None, _) => "-".into(),
            };
            format!("{} <small>{}</small>", esc(&h.host), esc(&st))
        })
        .collect();
    s.push_str(&hosts.join("<br>"));
    s.push_str("</td><td>");
    if svc.state == "failing" && svc.ack.is_none() {
        s.push_str(&forms.button(
            &[("action", "ack"), ("group", &svc.group), ("service", &svc.service)],
            "acknowledge",
        ));
    }
    s.push_str("</td></tr>");
}

/// The JSON form: the snapshot, and the fragment the script puts in place.
pub fn json(snap: &Snapshot, forms: &Forms) -> String {
    let mut v = serde_json::to_value(snap).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("html".into(), fragment(snap, forms).into());
    }
    let mut s = serde_json::to_string(&v).unwrap_or_default();
    s.push('\n');
    s
}
