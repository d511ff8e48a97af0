//! Tests that need a real IPVS kernel run inside a VM: Debian 12's own kernel under qemu
//! (`contrib/ipvs-vm.sh`), booted once per test binary. A test file has one host test
//! that boots the VM and runs the file's own `#[ignore]`d tests inside it; each of those
//! starts with `vm::guard()`, so that `cargo test -- --ignored` on the host fails loudly
//! instead of passing without a kernel that has IPVS:
//!
//! ```ignore
//! mod common;
//! use common::vm;
//! #[test]
//! fn ipvs_vm() { vm::run_ignored_inside("vm_"); }
//! #[test] #[ignore = "runs inside the IPVS VM, started by ipvs_vm"]
//! fn vm_service() { vm::guard(); /* ipvsadm, namespaces, ... */ }
//! ```
//!
//! Inside, the host's / is seen read-only under a tmpfs overlay (nothing written there
//! reaches the host), with the guest's own /proc /sys /dev /run and /tmp, and as root.
//! The tests inside run one at a time: give each its own namespaces, or flush IPVS.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set (to 1) in the environment of whatever runs inside the VM.
pub const IN_VM: &str = "HAKIT_IN_VM";

/// `contrib/ipvs-vm.sh run`'s status when the VM itself failed (no boot, timeout).
pub const VM_FAILED: i32 = 125;

pub fn in_vm() -> bool {
    std::env::var_os(IN_VM).is_some()
}

/// The first line of a test meant to run inside the VM.
pub fn guard() {
    assert!(
        in_vm(),
        "must run inside the IPVS VM: this test is #[ignore]d on the host and run inside \
         by its file's host test (`cargo test --test FILE`, without --ignored)"
    );
}

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/ipvs-vm.sh")
}

/// What the run inside printed, and how many tests passed there.
pub struct Inner {
    pub passed: usize,
    pub stdout: String,
    pub stderr: String,
}

/// Boot the VM once and run this test binary's ignored tests whose names contain
/// `filter` inside it, one at a time. Panics, so that the calling host test fails,
/// if the VM cannot start or times out, if a test inside fails, or if none ran.
/// Already inside the VM (a whole suite run there), it runs them without a second VM.
pub fn run_ignored_inside(filter: &str) -> Inner {
    let me = std::env::current_exe().expect("the test binary's path");
    let args = ["--ignored", "--test-threads=1", "--nocapture", filter];
    let mut cmd = if in_vm() {
        let mut c = Command::new(&me);
        c.args(args);
        c
    } else {
        let mut c = Command::new("bash");
        c.arg(script()).arg("run").arg(&me).args(args);
        c
    };
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("IPVS VM: cannot run {}: {e}", script().display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("--- inside the IPVS VM: {} ---\n{stdout}", me.display());
    eprint!("{stderr}");
    if out.status.code() == Some(VM_FAILED) {
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "IPVS VM FAILED (status {VM_FAILED}: no boot, no qemu or a timeout; `bash contrib/deps.sh` \
             installs and prepares it):\n{}",
            tail.join("\n")
        );
    }
    assert!(
        out.status.success(),
        "tests inside the IPVS VM failed ({}); their output is above",
        out.status
    );
    let passed = passed(&stdout).unwrap_or_else(|| panic!("IPVS VM: no `test result: ok.` line in what ran inside"));
    assert!(
        passed > 0,
        "IPVS VM: no ignored test matching {filter:?} ran inside (a filter that matches nothing \
         would pass silently)"
    );
    Inner { passed, stdout, stderr }
}

/// N from libtest's `test result: ok. N passed; ...`.
fn passed(stdout: &str) -> Option<usize> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. ")?.split(' ').next()?.parse().ok())
}
