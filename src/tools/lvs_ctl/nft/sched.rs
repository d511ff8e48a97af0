//! Which real server each scheduler slot names. The kernel side only looks a slot up
//! (`numgen inc mod L`, `jhash ... mod L`); the weights are turned into slots here.

use crate::tools::lvs_ctl::model::{addr_bits, Dest};

/// The schedulers this backend can do exactly (or, for DR's stateless path, as said in
/// the module comment), and the message for the others.
pub const SCHEDULERS: &[&str] = &["rr", "wrr", "sh", "dh", "mh", "fo"];

/// The Maglev lookup table's size: a prime well above 100 × the real servers a
/// service usually has, so that each server's share is within about 1 % of its weight.
pub const MAGLEV_SIZE: usize = 1021;

/// The longest weighted slot list; weights whose sum (over their gcd) is longer are
/// scaled down to it (each live server keeps at least one slot), an error of at most
/// one slot in 512 per server.
pub const WRR_MAX: u64 = 512;

/// Why a scheduler is refused, or None when it is done.
pub fn refusal(name: &str) -> Option<String> {
    if SCHEDULERS.contains(&name) {
        return None;
    }
    let why = match name {
        "lc" | "wlc" | "sed" | "nq" => "least-connection needs per-connection state nftables does not keep",
        "lblc" | "lblcr" => "locality-based least-connection needs per-connection state nftables does not keep",
        "ovf" => "overflow needs active connection counts per real server at scheduling time",
        _ => "it is not a scheduler this backend knows",
    };
    Some(format!(
        "the nft backend cannot do {name} ({why}); use rr, wrr, sh, dh, mh or fo, or --backend ipvs"
    ))
}

/// The live real servers (weight > 0) in the order slots are given out.
pub fn live(dests: &[Dest]) -> Vec<&Dest> {
    let mut v: Vec<&Dest> = dests.iter().filter(|d| d.weight > 0).collect();
    v.sort_by_key(|d| d.sort_key());
    v
}

/// fo: the highest weight, the first in address order among equals.
pub fn failover(dests: &[Dest]) -> Option<&Dest> {
    let l = live(dests);
    let max = l.iter().map(|d| d.weight).max()?;
    l.into_iter().find(|d| d.weight == max)
}

/// Slots for rr: each live server once.
pub fn round_robin(dests: &[Dest]) -> Vec<&Dest> {
    live(dests)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Weights as slot counts: divided by their gcd, scaled to [`WRR_MAX`] if longer
/// (largest remainder, at least one each).
fn slot_counts(weights: &[u64]) -> Vec<u64> {
    let g = weights.iter().copied().fold(0, gcd).max(1);
    let w: Vec<u64> = weights.iter().map(|w| w / g).collect();
    let sum: u64 = w.iter().sum();
    if sum <= WRR_MAX {
        return w;
    }
    let n = w.len() as u64;
    let room = WRR_MAX.saturating_sub(n);
    // One slot each, the rest shared by weight with the largest remainders first.
    let mut counts: Vec<u64> = w.iter().map(|x| 1 + x * room / sum).collect();
    let mut rest: Vec<(u64, usize)> = w.iter().enumerate().map(|(i, x)| ((x * room) % sum, i)).collect();
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut left = WRR_MAX.saturating_sub(counts.iter().sum());
    for (_, i) in rest {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    counts
}

/// Slots for wrr (and sh, dh): IPVS's weighted round-robin sequence over one cycle
/// (the current weight steps down from the highest; every server at least that heavy
/// takes a turn), so that consecutive connections are interleaved, not grouped.
pub fn weighted(dests: &[Dest]) -> Vec<&Dest> {
    let l = live(dests);
    let counts = slot_counts(&l.iter().map(|d| d.weight as u64).collect::<Vec<_>>());
    let max = counts.iter().copied().max().unwrap_or(0);
    let mut out = Vec::new();
    for cw in (1..=max).rev() {
        for (i, d) in l.iter().enumerate() {
            if counts[i] >= cw {
                out.push(*d);
            }
        }
    }
    out
}

fn fnv(seed: u64, d: &Dest) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in addr_bits(d.addr)
        .to_be_bytes()
        .iter()
        .chain(d.port.to_be_bytes().iter())
    {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Slots for mh: Maglev's lookup table of [`MAGLEV_SIZE`] entries. Each live server
/// walks its own permutation (offset and skip from hashes of its address and port)
/// and takes the next free entry, as many turns per round as its weight (over the
/// gcd), until the table is full. A server that leaves frees only about its own share:
/// the others' entries mostly stay where they were, on every director alike.
pub fn maglev(dests: &[Dest]) -> Vec<&Dest> {
    let l = live(dests);
    if l.is_empty() {
        return Vec::new();
    }
    let m = MAGLEV_SIZE as u64;
    let turns = {
        let w: Vec<u64> = l.iter().map(|d| d.weight as u64).collect();
        let g = w.iter().copied().fold(0, gcd).max(1);
        // Very uneven weights would make rounds long; capping keeps filling bounded.
        w.iter().map(|x| (x / g).min(m)).collect::<Vec<_>>()
    };
    let perm: Vec<(u64, u64)> = l
        .iter()
        .map(|d| (fnv(0x4d41_474c, d) % m, fnv(0x534b_4950, d) % (m - 1) + 1))
        .collect();
    let mut next = vec![0u64; l.len()];
    let mut table: Vec<Option<usize>> = vec![None; MAGLEV_SIZE];
    let mut filled = 0;
    'fill: loop {
        for i in 0..l.len() {
            for _ in 0..turns[i] {
                loop {
                    let (off, skip) = perm[i];
                    let c = ((off + next[i] * skip) % m) as usize;
                    next[i] += 1;
                    if table[c].is_none() {
                        table[c] = Some(i);
                        filled += 1;
                        break;
                    }
                }
                if filled == MAGLEV_SIZE {
                    break 'fill;
                }
            }
        }
    }
    table.into_iter().map(|i| l[i.unwrap_or(0)]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(last: u8, w: u32) -> Dest {
        let mut d = Dest::new(format!("10.0.0.{last}").parse().unwrap(), 80);
        d.weight = w;
        d
    }

    #[test]
    fn wrr_interleaves_by_weight() {
        let ds = [d(1, 1), d(2, 2), d(3, 3)];
        let s: Vec<u8> = weighted(&ds).iter().map(|x| addr_bits(x.addr) as u8).collect();
        assert_eq!(s, vec![3, 2, 3, 1, 2, 3]);
        let ds = [d(1, 0), d(2, 4), d(3, 6)];
        assert_eq!(weighted(&ds).len(), 5, "divided by the gcd, the quiescent left out");
    }

    #[test]
    fn wrr_scales_long_cycles() {
        let ds = [d(1, 65535), d(2, 65534), d(3, 1)];
        let s = weighted(&ds);
        assert_eq!(s.len() as u64, WRR_MAX);
        assert!(s.iter().any(|x| x.weight == 1), "every live server keeps a slot");
    }

    #[test]
    fn maglev_spreads_by_weight_and_remaps_little() {
        let ds = [d(1, 1), d(2, 1), d(3, 1), d(4, 1)];
        let t = maglev(&ds);
        assert_eq!(t.len(), MAGLEV_SIZE);
        for x in &ds {
            let n = t.iter().filter(|y| y.addr == x.addr).count();
            assert!((245..=266).contains(&n), "{n}");
        }
        let fewer = [d(1, 1), d(2, 1), d(3, 1)];
        let u = maglev(&fewer);
        let moved = t
            .iter()
            .zip(&u)
            .filter(|(a, b)| a.addr != b.addr && addr_bits(a.addr) as u8 != 4)
            .count();
        assert!(moved < MAGLEV_SIZE / 10, "{moved} entries of others moved");
    }

    #[test]
    fn fo_and_refusals() {
        let ds = [d(1, 2), d(2, 5), d(3, 5)];
        assert_eq!(failover(&ds).unwrap().addr, ds[1].addr);
        assert!(failover(&[d(1, 0)]).is_none());
        assert!(refusal("wlc")
            .unwrap()
            .contains("the nft backend cannot do wlc (least-connection"));
        assert!(refusal("rr").is_none());
    }
}
