//! What chan-switch says to the other nodes, as cluster messages through hb-send's FIFO
//! (signed, sent on every channel, delivered by hb-watch as `message` events):
//!
//! - `t=chan-switch epoch=E by=DECIDER use=CH moved=NODE:CH,... manual=0|1` — an order;
//! - `t=chan-state epoch=E by=DECIDER use=CH moved=... active=CH deaf=CH/NODE,...
//!   carrier=CH,... took=US age=MS` — a node's report: the order it applied (its
//!   acknowledgement), the channel its traffic uses, whom it does not hear on which
//!   channel, which of its devices have no carrier, and how long its last change took;
//! - `t=chan-request use=CH|home` — `chan-switch to`/`back` typed on a node that is not
//!   the decider, passed on to it.
//!
//! Channels travel by name, so that a node whose list differs is caught, not misread.

use super::decide::{Ch, Order};
use std::collections::{BTreeMap, BTreeSet};

pub const T_ORDER: &str = "chan-switch";
pub const T_STATE: &str = "chan-state";
pub const T_REQUEST: &str = "chan-request";

/// A node's report, as the decider keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The order it applied.
    pub order: Order,
    /// The channel its cluster traffic uses (the order's, unless its device there has
    /// no carrier).
    pub active: Ch,
    /// Per channel, the nodes it does not hear there.
    pub deaf: Vec<BTreeSet<String>>,
    /// Channels whose device has no carrier on that node.
    pub carrier_down: Vec<Ch>,
    /// How long its last routing change took, µs.
    pub took_us: u64,
}

fn ch_name(names: &[String], c: Ch) -> &str {
    names.get(c).map_or("?", |s| s.as_str())
}

fn ch_of(names: &[String], s: &str) -> Result<Ch, String> {
    names
        .iter()
        .position(|n| n == s)
        .ok_or_else(|| format!("`{s}` is not one of this node's channels ({})", names.join(", ")))
}

/// `n3:b,n4:b`
fn moved_of(names: &[String], s: &str) -> Result<BTreeMap<String, Ch>, String> {
    let mut out = BTreeMap::new();
    for e in s.split(',').filter(|e| !e.is_empty()) {
        let (n, c) = e.split_once(':').ok_or_else(|| format!("`{e}` is not NODE:CHANNEL"))?;
        if !crate::wire::hv::valid_name(n) {
            return Err(format!("`{n}` is not a node name"));
        }
        out.insert(n.to_string(), ch_of(names, c)?);
    }
    Ok(out)
}

fn field<'a>(fields: &'a [(String, String)], k: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn need<'a>(fields: &'a [(String, String)], k: &str) -> Result<&'a str, String> {
    field(fields, k).ok_or_else(|| format!("no `{k}`"))
}

fn order_fields(o: &Order, names: &[String]) -> Vec<(&'static str, String)> {
    vec![
        ("epoch", o.epoch.to_string()),
        ("by", o.by.clone()),
        ("use", ch_name(names, o.use_).to_string()),
        ("moved", super::decide::moved_text(&o.moved, names)),
        ("manual", if o.manual { "1" } else { "0" }.into()),
    ]
}

pub fn read_order(fields: &[(String, String)], names: &[String]) -> Result<Order, String> {
    let epoch = need(fields, "epoch")?
        .parse::<u64>()
        .map_err(|_| "`epoch` is not a number".to_string())?;
    let by = need(fields, "by")?.to_string();
    // Epoch 0 is the order nobody gave (a node that has applied none yet).
    if !(crate::wire::hv::valid_name(&by) || (by.is_empty() && epoch == 0)) {
        return Err(format!("`{by}` is not a node name"));
    }
    Ok(Order {
        epoch,
        by,
        use_: ch_of(names, need(fields, "use")?)?,
        moved: moved_of(names, field(fields, "moved").unwrap_or(""))?,
        manual: field(fields, "manual") == Some("1"),
    })
}

/// The FIFO block for an order.
pub fn order_block(o: &Order, names: &[String]) -> String {
    block(T_ORDER, &order_fields(o, names))
}

/// The FIFO block for a report, `age_ms` after the node applied its order.
pub fn state_block(r: &Report, age_ms: u64, names: &[String]) -> String {
    let mut f = order_fields(&r.order, names);
    f.push(("active", ch_name(names, r.active).to_string()));
    let deaf: Vec<String> = r
        .deaf
        .iter()
        .enumerate()
        .flat_map(|(c, s)| s.iter().map(move |n| format!("{}/{n}", ch_name(names, c))))
        .collect();
    f.push(("deaf", deaf.join(",")));
    let carrier: Vec<&str> = r.carrier_down.iter().map(|&c| ch_name(names, c)).collect();
    f.push(("carrier", carrier.join(",")));
    f.push(("took", r.took_us.to_string()));
    f.push(("age", age_ms.to_string()));
    block(T_STATE, &f)
}

/// A report and its age (ms since that node applied its order).
pub fn read_state(fields: &[(String, String)], names: &[String]) -> Result<(Report, u64), String> {
    let order = read_order(fields, names)?;
    let mut deaf = vec![BTreeSet::new(); names.len()];
    for e in field(fields, "deaf").unwrap_or("").split(',').filter(|e| !e.is_empty()) {
        let (c, n) = e.split_once('/').ok_or_else(|| format!("`{e}` is not CHANNEL/NODE"))?;
        if !crate::wire::hv::valid_name(n) {
            return Err(format!("`{n}` is not a node name"));
        }
        deaf[ch_of(names, c)?].insert(n.to_string());
    }
    let carrier_down = field(fields, "carrier")
        .unwrap_or("")
        .split(',')
        .filter(|e| !e.is_empty())
        .map(|c| ch_of(names, c))
        .collect::<Result<Vec<_>, _>>()?;
    let r = Report {
        order,
        active: ch_of(names, need(fields, "active")?)?,
        deaf,
        carrier_down,
        took_us: field(fields, "took").and_then(|t| t.parse().ok()).unwrap_or(0),
    };
    Ok((r, field(fields, "age").and_then(|t| t.parse().ok()).unwrap_or(0)))
}

/// A hand request: `Some(channel)` for `to`, `None` for `back`.
pub fn request_block(to: Option<Ch>, names: &[String]) -> String {
    let u = to.map_or("home".to_string(), |c| ch_name(names, c).to_string());
    block(T_REQUEST, &[("use", u)])
}

pub fn read_request(fields: &[(String, String)], names: &[String]) -> Result<Option<Ch>, String> {
    match need(fields, "use")? {
        "home" => Ok(None),
        c => ch_of(names, c).map(Some),
    }
}

use crate::wire::fifo::block;

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    use crate::wire::fifo::block_fields as fields;

    #[test]
    fn orders_and_reports_round_trip() {
        let o = Order {
            epoch: 7,
            by: "n1".into(),
            use_: 0,
            moved: BTreeMap::from([("n3".to_string(), 1)]),
            manual: true,
        };
        let b = order_block(&o, &names());
        assert!(
            b.starts_with(">>>\nt=chan-switch\nepoch=7\nby=n1\nuse=a\nmoved=n3:b\nmanual=1\n"),
            "{b}"
        );
        assert_eq!(read_order(&fields(&b), &names()).unwrap(), o);
        let r = Report {
            order: o,
            active: 1,
            deaf: vec![BTreeSet::from(["n3".to_string(), "n4".to_string()]), BTreeSet::new()],
            carrier_down: vec![0],
            took_us: 120,
        };
        let b = state_block(&r, 5, &names());
        assert!(
            b.contains("manual=1\nactive=b\ndeaf=a/n3,a/n4\ncarrier=a\ntook=120\nage=5\n"),
            "{b}"
        );
        assert_eq!(read_state(&fields(&b), &names()).unwrap(), (r, 5));
        assert_eq!(
            read_request(&fields(&request_block(Some(1), &names())), &names()),
            Ok(Some(1))
        );
        assert_eq!(
            read_request(&fields(&request_block(None, &names())), &names()),
            Ok(None)
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let f = |s: &str| fields(s);
        assert!(read_order(&f("epoch=x\nby=n1\nuse=a"), &names())
            .unwrap_err()
            .contains("epoch"));
        assert!(read_order(&f("epoch=1\nby=n1\nuse=c"), &names())
            .unwrap_err()
            .contains("`c`"));
        assert!(read_order(&f("epoch=1\nuse=a"), &names()).unwrap_err().contains("by"));
        assert!(read_order(&f("epoch=1\nby=n1\nuse=a\nmoved=n3"), &names()).is_err());
        assert!(read_order(&f("epoch=1\nby=a b\nuse=a"), &names()).is_err());
        assert!(read_state(&f("epoch=1\nby=n1\nuse=a\nactive=a\ndeaf=n3"), &names()).is_err());
    }
}
