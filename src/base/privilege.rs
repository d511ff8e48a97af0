//! Capabilities, not uid 0: a tool that needs CAP_NET_ADMIN or CAP_NET_RAW asks the
//! kernel whether it has them, so that a systemd unit with `User=` and
//! `AmbientCapabilities=` (or `setpriv --ambient-caps`) works as well as root.

/// The capabilities hakit's tools use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// Ports below 1024 (Heartbeat's 694).
    NetBindService = 10,
    /// Addresses, routes, links.
    NetAdmin = 12,
    /// Raw and packet sockets (ARP, ICMP).
    NetRaw = 13,
    /// mlockall beyond RLIMIT_MEMLOCK.
    IpcLock = 14,
    /// SCHED_FIFO.
    SysNice = 23,
}

impl Cap {
    pub fn name(self) -> &'static str {
        match self {
            Cap::NetBindService => "CAP_NET_BIND_SERVICE",
            Cap::NetAdmin => "CAP_NET_ADMIN",
            Cap::NetRaw => "CAP_NET_RAW",
            Cap::IpcLock => "CAP_IPC_LOCK",
            Cap::SysNice => "CAP_SYS_NICE",
        }
    }
}

/// The effective capability set, as the kernel reports it in /proc/self/status.
fn effective() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Whether this process has `cap` in its effective set.
pub fn has(cap: Cap) -> bool {
    effective() & (1u64 << cap as u32) != 0
}

/// The ones of `caps` this process lacks (empty: it has them all).
pub fn missing(caps: &[Cap]) -> Vec<Cap> {
    let eff = effective();
    caps.iter()
        .copied()
        .filter(|c| eff & (1u64 << *c as u32) == 0)
        .collect()
}

/// "needs CAP_NET_ADMIN and CAP_NET_RAW" for an error message.
pub fn describe(caps: &[Cap]) -> String {
    caps.iter().map(|c| c.name()).collect::<Vec<_>>().join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_here_has_them_and_the_names_read_well() {
        if nix::unistd::geteuid().is_root() {
            assert!(missing(&[Cap::NetAdmin, Cap::NetRaw]).is_empty());
        }
        assert_eq!(describe(&[Cap::NetAdmin, Cap::NetRaw]), "CAP_NET_ADMIN and CAP_NET_RAW");
    }
}
