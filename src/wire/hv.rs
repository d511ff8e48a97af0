//! A node's view of the cluster, carried in its heartbeats as the field `hv`
//! (Heartbeat ignores fields it does not know):
//!
//! `hv=node2:3:4,node3:1:12` — for each node the sender hears: the channels it hears it
//! on (a bit mask, hex) and how long ago it last heard it (ms). Receivers use it to
//! tell a node that is dead from one that only they cannot reach (cross-check), and a
//! cut link from a dead node.

/// The view field's name.
pub const FIELD: &str = "hv";
/// The most bytes of view a heartbeat carries; a larger cluster's view is sent in
/// turns, a slice per heartbeat, so that every datagram stays under one MTU.
pub const MAX_BYTES: usize = 900;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub mask: u8,
    pub age_ms: u64,
}

/// Whether a name can be carried in a view (and is a sane node name at all).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= crate::table::NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Parse a view; entries that do not parse are skipped (the rest still counts).
pub fn parse(v: &str) -> impl Iterator<Item = Entry<'_>> {
    v.split(',').filter_map(|e| {
        let mut it = e.splitn(3, ':');
        let name = it.next()?;
        let mask = u8::from_str_radix(it.next()?, 16).ok()?;
        let age_ms = it.next()?.parse().ok()?;
        valid_name(name).then_some(Entry { name, mask, age_ms })
    })
}

/// Append one entry to a view being built, if it fits.
pub fn push(out: &mut String, name: &str, mask: u8, age_ms: u64) -> bool {
    let entry = format!("{name}:{mask:x}:{age_ms}");
    if out.len() + entry.len() + 1 > MAX_BYTES {
        return false;
    }
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(&entry);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let mut s = String::new();
        assert!(push(&mut s, "node2", 3, 4));
        assert!(push(&mut s, "node3", 1, 12));
        let v: Vec<_> = parse(&s).collect();
        assert_eq!(
            v,
            vec![
                Entry {
                    name: "node2",
                    mask: 3,
                    age_ms: 4
                },
                Entry {
                    name: "node3",
                    mask: 1,
                    age_ms: 12
                }
            ]
        );
        assert_eq!(parse("bad,x:zz:1,y:1:2").count(), 1);
    }
}
