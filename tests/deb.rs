//! The Debian packages (debian/, contrib/deb/build.sh): built once per source (the
//! paths that go into them), checked by lintian, then installed with dpkg in clean Debian 12 chroots (debootstrap's
//! minbase, cached as a tarball under /var/cache/hakit-test). Each chroot command runs
//! in its own mount, PID and network namespaces: /proc is mounted there only, nothing
//! it starts outlives it, and nothing in it reaches a network. The downloads
//! (debootstrap, `apt-get download ipvsadm` from SUITE at MIRROR, both once, then
//! cached) are the only packets, to Debian's mirror.

mod common;
use common::*;
use sha2::{Digest, Sha256};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
/// hakit's Depends (adduser for its postinst, procps for the units' /bin/kill), man-db
/// for `man -w`, systemd for `systemd-analyze verify`, and what Debian's ipvsadm links
/// against.
const INCLUDE: &[&str] = &[
    "adduser",
    "libnl-3-200",
    "libnl-genl-3-200",
    "libpopt0",
    "man-db",
    "procps",
    "systemd",
];
const CACHE: &str = "/var/cache/hakit-test";
const TOOLS: &[&str] = &[
    "arp-announce",
    "chan-switch",
    "hb-send",
    "hb-watch",
    "ipfake",
    "lvs-ctl",
    "mon-check",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn need_root() {
    assert!(is_root(), "tests/deb.rs needs root (debootstrap, chroot, namespaces)");
    for c in [
        "debootstrap",
        "dpkg-buildpackage",
        "lintian",
        "unshare",
        "setpriv",
        "apt-get",
    ] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(c).is_file());
        assert!(found, "{c} not found: run contrib/deps.sh");
    }
}

fn check(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The cargo target directory the tests run from (the nested build gets its own
/// directories beside it, so it never waits on this one's lock).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_hb-watch"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

/// dpkg's name of this machine's architecture (the package is linux-any).
fn arch() -> String {
    let out = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .expect("run dpkg");
    check("dpkg --print-architecture", &out).trim().to_string()
}

struct Debs {
    hakit: PathBuf,
    ipvsadm: PathBuf,
}

/// The two packages of this source, built by contrib/deb/build.sh (or reused by it
/// when the source is the one it last built). A failed build fails every test that
/// needs it, with its message, without building again.
fn debs() -> &'static Debs {
    static DEBS: OnceLock<Result<Debs, String>> = OnceLock::new();
    let built = DEBS.get_or_init(|| {
        need_root();
        let t = target_dir().join("deb");
        // build.sh once emptied DIR/../build: a file planted there must outlive a build.
        let beside = t.join("build");
        fs::create_dir_all(&beside).unwrap();
        let planted = beside.join("not-build-sh-s");
        fs::write(&planted, "kept\n").unwrap();
        let start = Instant::now();
        let out = Command::new("bash")
            .arg(repo().join("contrib/deb/build.sh"))
            .arg("--target-dir")
            .arg(t.join("cargo"))
            .arg(t.join("out"))
            // Its debug symbols (hakit-dbgsym) cost minutes of xz and are not tested.
            .env("DEB_BUILD_OPTIONS", "noautodbgsym")
            .output()
            .expect("run contrib/deb/build.sh");
        let paths = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "contrib/deb/build.sh: {}\n{paths}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        eprintln!("deb: packages ready in {:.1} s", start.elapsed().as_secs_f64());
        if !planted.exists() {
            return Err(format!(
                "build.sh removed {} (outside its target directory)",
                planted.display()
            ));
        }
        let find = |name: String| {
            paths
                .lines()
                .map(PathBuf::from)
                .find(|p| p.file_name().is_some_and(|f| f.to_str() == Some(&name)))
                .ok_or_else(|| format!("build.sh printed no {name}: {paths}"))
        };
        let v = env!("CARGO_PKG_VERSION");
        Ok(Debs {
            hakit: find(format!("hakit_{v}_{}.deb", arch()))?,
            ipvsadm: find(format!("hakit-ipvsadm_{v}_all.deb"))?,
        })
    });
    built.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

/// The packages, with the chroot's tarball made meanwhile when it is not cached yet
/// (debootstrap waits on the mirror, the build on the CPUs: a fresh machine pays the
/// longer of the two, not both).
fn packages_and_chroot_base() -> &'static Debs {
    let base = std::thread::spawn(base_tarball);
    let d = debs();
    base.join()
        .expect("making the chroot's tarball failed (its message is above)");
    d
}

/// The cache directory, refused if anyone but root owns it or can write to it (a
/// tarball planted there would become the chroot the tests run as root).
fn cache_dir() -> PathBuf {
    let d = PathBuf::from(CACHE);
    fs::create_dir_all(&d).unwrap();
    let m = fs::symlink_metadata(&d).unwrap();
    assert!(
        m.is_dir() && m.uid() == 0 && m.mode() & 0o022 == 0,
        "{CACHE}: not a directory of root's that only root can write; remove it"
    );
    d
}

/// A tarball of a fresh `debootstrap --variant=minbase` of Debian 12 with INCLUDE,
/// keyed by what it was made from; made once (a fresh machine pays minutes once).
fn base_tarball() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let include = INCLUDE.join(",");
    let key = Sha256::digest(format!("{SUITE} minbase {MIRROR} {include}"));
    let key: String = key[..6].iter().map(|b| format!("{b:02x}")).collect();
    let tarball = cache_dir().join(format!("{SUITE}-minbase-{key}.tar.gz"));
    if tarball.exists() {
        return tarball;
    }
    let start = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("hakit-debootstrap.")
        .tempdir_in("/var/tmp")
        .unwrap();
    // In a mount namespace of its own: the /proc and /sys debootstrap mounts in its
    // target go with it, also when it is killed.
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "debootstrap"])
        .args(["--variant=minbase", &format!("--include={include}"), SUITE])
        .arg(dir.path())
        .arg(MIRROR)
        .output()
        .expect("run debootstrap");
    check("debootstrap (needs Debian's mirror)", &out);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let boot = start.elapsed().as_secs_f64();
    let part = tarball.with_extension(format!("part{}", std::process::id()));
    let out = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["--numeric-owner", "-czf"])
        .arg(&part)
        .arg(".")
        .output()
        .unwrap();
    if !out.status.success() {
        let _ = fs::remove_file(&part);
    }
    check("tar of the chroot", &out);
    fs::rename(&part, &tarball).unwrap();
    eprintln!(
        "deb: debootstrap {boot:.1} s, tarball {:.1} s: {}",
        start.elapsed().as_secs_f64() - boot,
        tarball.display()
    );
    tarball
}

/// A clean chroot unpacked from the cached tarball, removed on drop (also when a test
/// fails). Nothing is ever mounted in it from outside: the /proc its commands see is
/// mounted in their own mount namespace and goes with it.
struct Chroot {
    root: PathBuf,
}

impl Chroot {
    fn new() -> Chroot {
        let tarball = base_tarball();
        let start = Instant::now();
        let root = tempfile::Builder::new()
            .prefix("hakit-chroot.")
            .tempdir_in("/var/tmp")
            .unwrap()
            .keep();
        let c = Chroot { root };
        let out = Command::new("tar")
            .arg("-C")
            .arg(&c.root)
            .args(["--numeric-owner", "-xzf"])
            .arg(&tarball)
            .output()
            .unwrap();
        check("unpacking the chroot", &out);
        // debootstrap's temporary directory was 0700, and so is the tarball's `.`: the
        // chroot's / must be 0755 as on a machine (man-db's trigger runs as the user
        // man, the units as hakit).
        fs::set_permissions(&c.root, fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("deb: chroot unpacked in {:.1} s", start.elapsed().as_secs_f64());
        c
    }

    fn root(&self) -> &Path {
        &self.root
    }

    /// `sh -c script` inside, as root, in new mount, PID and network namespaces.
    fn run(&self, script: &str) -> Output {
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--pid", "--fork", "--net"])
            .arg(format!("--mount-proc={}", self.root().join("proc").display()))
            .arg("chroot")
            .arg(self.root())
            .args(["/bin/sh", "-c", script])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .expect("run unshare")
    }

    fn ok(&self, script: &str) -> String {
        check(&format!("in the chroot: {script}"), &self.run(script))
    }

    /// Copies a file into the chroot's /tmp; its path inside.
    fn put(&self, file: &Path) -> String {
        let name = file.file_name().unwrap().to_str().unwrap();
        fs::copy(file, self.root().join("tmp").join(name)).unwrap();
        format!("/tmp/{name}")
    }

    /// Every path of the chroot's own file system with its type and link target, for
    /// comparing before and after.
    fn snapshot(&self) -> Vec<String> {
        let list = self.ok("find / -xdev -printf '%p %y %l\\n' | sort");
        list.lines().map(str::to_string).collect()
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        // The chroot's /proc was mounted only in its commands' namespaces; make sure
        // before removing (a mount here would be the host's /proc, not ours to empty).
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.root.display().to_string();
        if mounts
            .lines()
            .any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&root)))
        {
            eprintln!("deb: {root} has mounts: left in place");
            return;
        }
        let _ = Command::new("rm")
            .args(["-rf", "--one-file-system"])
            .arg(&self.root)
            .status();
    }
}

/// Debian's own ipvsadm package of SUITE, downloaded from MIRROR once (apt-get with a
/// sources list, lists and cache of its own: the host's sources play no part; the
/// Release file is checked with Debian's archive key) and kept in the cache by suite.
fn debian_ipvsadm() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = cache_dir().join(format!("{SUITE}-ipvsadm"));
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let cached = |d: &Path| {
        fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("ipvsadm_") && p.is_file())
    };
    if let Some(p) = cached(&dir) {
        return p;
    }
    let tmp = tempfile::tempdir_in(&dir).unwrap();
    let t = tmp.path();
    for d in ["lists/partial", "cache/archives/partial", "parts", "get"] {
        fs::create_dir_all(t.join(d)).unwrap();
    }
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    assert!(
        Path::new(keyring).is_file(),
        "{keyring} missing (debian-archive-keyring)"
    );
    fs::write(
        t.join("sources.list"),
        format!("deb [signed-by={keyring}] {MIRROR} {SUITE} main\n"),
    )
    .unwrap();
    let apt = |args: &[&str]| {
        let mut c = Command::new("apt-get");
        c.arg("-qq")
            .arg(format!("-oDir::Etc::SourceList={}", t.join("sources.list").display()))
            .arg(format!("-oDir::Etc::SourceParts={}", t.join("parts").display()))
            .arg(format!("-oDir::State::Lists={}", t.join("lists").display()))
            .arg(format!("-oDir::Cache={}", t.join("cache").display()))
            // The temporary directory is root's alone (0700): apt's _apt cannot write it.
            .arg("-oAPT::Sandbox::User=root")
            .args(args)
            .current_dir(t.join("get"));
        c.output().unwrap()
    };
    check(&format!("apt-get update ({MIRROR} {SUITE})"), &apt(&["update"]));
    check(
        &format!("apt-get download ipvsadm ({MIRROR} {SUITE})"),
        &apt(&["download", "ipvsadm"]),
    );
    let got = cached(&t.join("get")).expect("apt-get download made no ipvsadm_*.deb");
    let to = dir.join(got.file_name().unwrap());
    fs::rename(&got, &to).unwrap();
    to
}

#[test]
fn build_sh_refuses_a_bad_command_line() {
    for args in [&[][..], &["--target-dir"][..], &["--bogus", "x"][..], &["a", "b"][..]] {
        let out = Command::new("bash")
            .arg(repo().join("contrib/deb/build.sh"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "build.sh {args:?}: {err}");
        assert!(
            err.starts_with("build.sh: ") && err.lines().count() == 1,
            "build.sh {args:?}: {err}"
        );
    }
}

#[test]
fn lintian_finds_no_errors() {
    let d = debs();
    // As nobody (lintian unpacks what it checks and says not to run it as root), on
    // copies that nobody can read wherever the target directory is.
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let copies: Vec<PathBuf> = [&d.hakit, &d.ipvsadm]
        .iter()
        .map(|p| {
            let to = dir.path().join(p.file_name().unwrap());
            fs::copy(p, &to).unwrap();
            to
        })
        .collect();
    let out = Command::new("setpriv")
        .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--"])
        .args(["env", "HOME=/nonexistent", "TMPDIR=/tmp", "lintian"])
        .args(["--fail-on", "error", "--display-info", "--tag-display-limit", "0"])
        .args(&copies)
        .output()
        .expect("run lintian");
    let said = String::from_utf8_lossy(&out.stdout);
    // The warnings are shown (cargo test -- --nocapture): the report lists them.
    eprintln!("lintian:\n{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "lintian found errors:\n{said}");
    assert!(
        !said.lines().any(|l| l.starts_with("E:")),
        "lintian found errors:\n{said}"
    );
}

/// The units (services and timers) the package installs, by their path inside.
fn units(c: &Chroot) -> Vec<String> {
    let list = c.ok("dpkg -L hakit");
    list.lines()
        .filter(|l| l.contains("/systemd/system/") && (l.ends_with(".service") || l.ends_with(".timer")))
        .map(str::to_string)
        .collect()
}

fn files_of(dir: &str, exec_only: bool) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(repo().join(dir)) {
        Ok(rd) => rd
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && (!exec_only || fs::metadata(p).unwrap().mode() & 0o100 != 0))
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

#[test]
fn installs_in_a_clean_chroot_and_purges_to_nothing() {
    let d = packages_and_chroot_base();
    let c = Chroot::new();
    // node-exporter's directory, as prometheus-node-exporter makes it.
    c.ok("mkdir -p /var/lib/prometheus/node-exporter");
    let before = c.snapshot();
    let systemd_before = c.ok("find /etc/systemd/system -printf '%p %l\\n' | sort");
    let deb = c.put(&d.hakit);
    let inst = c.run(&format!("dpkg -i {deb}"));
    let said = check("dpkg -i hakit", &inst) + &String::from_utf8_lossy(&inst.stderr);
    // Its maintainer scripts and the triggers it sets off (man-db's) say no error.
    assert!(!said.to_lowercase().contains("error"), "dpkg -i hakit: {said}");

    // The seven tools, on PATH, of this version.
    let v = env!("CARGO_PKG_VERSION");
    for t in TOOLS {
        let said = c.ok(&format!("{t} --version"));
        assert!(said.contains(v), "{t} --version: {said}");
    }
    // Every man page, found by man-db.
    assert_eq!(c.ok("man -w hb-watch").trim(), "/usr/share/man/man1/hb-watch.1.gz");
    assert_eq!(
        c.ok("man -w 5 hakit.yaml").trim(),
        "/usr/share/man/man5/hakit.yaml.5.gz"
    );
    assert_eq!(c.ok("man -w 8 lvs-ctl").trim(), "/usr/share/man/man8/lvs-ctl.8.gz");
    let pages = files_of("man", false);
    let listed = c.ok("dpkg -L hakit | grep '^/usr/share/man/man[158]/.*\\.gz$' | sed 's|.*/||; s|\\.gz$||' | sort");
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        pages,
        "the man pages installed are man/'s"
    );
    // Completions where bash-completion, zsh and fish look for them, one per tool each.
    for t in TOOLS {
        c.ok(&format!(
            "test -s /usr/share/bash-completion/completions/{t} && test -s /usr/share/zsh/vendor-completions/_{t} \
             && test -s /usr/share/fish/vendor_completions.d/{t}.fish"
        ));
    }
    // The compositions where the units look for them; the MIB; the OCF agents in the
    // tree; the examples, valid.
    for s in ["pair.sh", "director.sh", "dual-channel.sh"] {
        c.ok(&format!(
            "test -x /usr/share/hakit/contrib/{s} && bash -n /usr/share/hakit/contrib/{s}"
        ));
    }
    c.ok("test -s /usr/share/hakit/contrib/netns-lib.sh && test -s /usr/share/snmp/mibs/HAKIT-MIB.txt");
    for a in files_of("contrib/ocf", true) {
        c.ok(&format!(
            "test -x /usr/lib/ocf/resource.d/hakit/{a} && sh -n /usr/lib/ocf/resource.d/hakit/{a}"
        ));
    }
    // How it is built and what the maintainer scripts leave to the operator.
    let readme = c.ok("cat /usr/share/doc/hakit/README.Debian");
    assert!(
        readme.contains("rustup") && readme.contains("hakit-pair@*"),
        "README.Debian: {readme}"
    );
    c.ok("mon-check run --check -c /usr/share/doc/hakit/examples/hakit.yaml");
    c.ok("mon-check run --check -c /usr/share/doc/hakit/examples/mon-check.yaml");

    // The user the units run as: a system user, no login.
    let pw = c.ok("getent passwd hakit");
    let f: Vec<&str> = pw.trim().split(':').collect();
    let uid: u32 = f[2].parse().unwrap();
    assert!(uid < 1000 && f[6].ends_with("nologin"), "hakit: {pw}");

    // Every unit of contrib/systemd/, with the package's paths, verified by systemd;
    // none enabled, none started.
    let units = units(&c);
    let names: Vec<String> = units
        .iter()
        .map(|u| u.rsplit('/').next().unwrap().to_string())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        files_of("contrib/systemd", false),
        "the units installed are contrib/systemd's"
    );
    c.ok(&format!("! grep -n /usr/local {}", units.join(" ")));
    for (u, n) in units.iter().zip(&names) {
        // A template is verified as an instance of it (`@i`); Documentation='s man
        // pages are looked up with man, ExecReload's /bin/kill must exist (procps).
        let path = format!("systemd-analyze verify {u}");
        let out = c.run(&path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "systemd-analyze verify {u}: {err}");
        let stem = n.split('@').next().unwrap().trim_end_matches(".service");
        assert!(!err.contains(stem), "systemd-analyze verify {u} warns: {err}");
        if !n.contains('@') {
            // static: no [Install] section, started only by another unit (the
            // metrics service by its timer); either way not enabled.
            let state = c.run(&format!("systemctl is-enabled {n}"));
            let state = String::from_utf8_lossy(&state.stdout);
            assert!(["disabled", "static"].contains(&state.trim()), "{n} is {state}");
        }
    }
    assert_eq!(
        c.ok("find /etc/systemd/system -printf '%p %l\\n' | sort"),
        systemd_before,
        "a unit was enabled"
    );
    // The maintainer scripts: an upgrade stops nothing (the peer would take over),
    // postinst restarts after one (deb-systemd-invoke: only units that run) and
    // starts none on a first install but the enabled, prerm stops them on removal.
    let script = |name: &str| fs::read_to_string(c.root().join("var/lib/dpkg/info").join(name)).unwrap_or_default();
    let (preinst, postinst, prerm) = (script("hakit.preinst"), script("hakit.postinst"), script("hakit.prerm"));
    assert!(
        !preinst.contains("deb-systemd-invoke"),
        "preinst stops units:\n{preinst}"
    );
    assert!(
        postinst.contains("_dh_action=restart") && postinst.contains("deb-systemd-invoke $_dh_action"),
        "postinst restarts no unit after an upgrade:\n{postinst}"
    );
    assert!(
        prerm.contains("deb-systemd-invoke stop") && prerm.contains("hb-watch.service"),
        "prerm stops no unit on removal:\n{prerm}"
    );
    // deb-systemd-invoke (init-system-helpers) starts no disabled unit and restarts
    // one only when it is active: what the restart above relies on.
    let invoke = fs::read_to_string(c.root().join("usr/bin/deb-systemd-invoke")).unwrap();
    assert!(
        invoke.contains("is a disabled or a static unit not running, not starting it"),
        "deb-systemd-invoke no longer skips disabled units"
    );

    // Upgraded (the same package again: preinst upgrade, postinst configure OLD): the
    // same user, still nothing enabled, the tools there.
    let again = check("dpkg -i hakit (again)", &c.run(&format!("dpkg -i {deb}")));
    assert_eq!(c.ok("getent passwd hakit"), pw, "the upgrade changed the user: {again}");
    assert_eq!(
        c.ok("find /etc/systemd/system -printf '%p %l\\n' | sort"),
        systemd_before,
        "the upgrade enabled a unit"
    );
    c.ok("hb-watch --version");
    // The examples name the package's paths.
    c.ok("! grep -rn /usr/local /usr/share/doc/hakit/examples");

    // Removed: the tools go, the user stays (Debian leaves system users); purged:
    // nothing of the package is left.
    c.ok("dpkg -r hakit");
    for t in TOOLS {
        assert!(!c.root().join("usr/bin").join(t).exists(), "{t} left after dpkg -r");
    }
    // As the units would: state, and hakit-metrics.service's node-exporter files.
    c.ok("mkdir -p /var/lib/hakit/floors && touch /var/lib/hakit/generation");
    c.ok("cd /var/lib/prometheus/node-exporter && touch hakit-cluster.prom hakit-lvs.prom hakit-checks.prom");
    c.ok("dpkg --purge hakit");
    let after = c.snapshot();
    let changed: Vec<&String> = after
        .iter()
        .filter(|l| !before.contains(l))
        .chain(before.iter().filter(|l| !after.contains(l)))
        .filter(|l| !bookkeeping(l))
        .collect();
    assert!(changed.is_empty(), "dpkg --purge hakit left or removed: {changed:#?}");
}

#[test]
fn refuses_a_normal_user_named_hakit() {
    let d = packages_and_chroot_base();
    let c = Chroot::new();
    // A login user of that name (uid >= 1000): the units must not run as it.
    c.ok("adduser --quiet --disabled-password --gecos '' hakit");
    let pw = c.ok("getent passwd hakit");
    let deb = c.put(&d.hakit);
    let out = c.run(&format!("dpkg -i {deb}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "dpkg -i hakit adopted the login user hakit: {said}"
    );
    assert!(
        said.contains("hakit") && said.contains("not a system user"),
        "dpkg -i hakit failed without saying why: {said}"
    );
    assert_eq!(c.ok("getent passwd hakit"), pw, "the login user was changed");
}

/// The packaged binaries name neither the directory they were built in nor the
/// builder's crate registry (--remap-path-prefix): the same source builds the same
/// bytes wherever it is built.
/// The hakit package's files, unpacked (dpkg-deb -x) into a temporary directory.
fn unpacked_hakit() -> tempfile::TempDir {
    let d = debs();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&d.hakit)
        .arg(dir.path())
        .output()
        .unwrap();
    check("dpkg-deb -x hakit", &out);
    dir
}

#[test]
fn binaries_name_no_build_paths() {
    let dir = unpacked_hakit();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{home}/.cargo"));
    let build = target_dir().join("deb/cargo/.deb-build");
    let forbidden = [
        cargo_home,
        "/.cargo/registry".to_string(),
        build.display().to_string(),
        "/.deb-build/".into(),
    ];
    for t in TOOLS {
        let bin = fs::read(dir.path().join("usr/bin").join(t)).unwrap();
        assert!(bin.len() > 100_000, "{t}: not a binary");
        for f in &forbidden {
            assert!(
                !bin.windows(f.len()).any(|w| w == f.as_bytes()),
                "usr/bin/{t} embeds {f}"
            );
        }
        // What it names instead (the remapped prefixes): the test can see a path.
        assert!(
            bin.windows(17).any(|w| w == b"/cargo/registry/s"),
            "usr/bin/{t} names no /cargo/registry/ path"
        );
    }
}

/// What dpkg, adduser and man-db keep about any package, and /run (a tmpfs: adduser's
/// lock, systemctl's marker of a unit load): not the package's files.
fn bookkeeping(line: &str) -> bool {
    let p = line.split(' ').next().unwrap();
    p.starts_with("/var/lib/dpkg/")
        || p.starts_with("/run/")
        || p.starts_with("/var/log/")
        || p.starts_with("/var/cache/man/")
        || p.starts_with("/var/cache/debconf/")
        || p.starts_with("/tmp/")
        || ["/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-"].contains(&p)
}

/// `/usr/sbin/ipvsadm` as it is: `lvs-ctl` (our alternative), `debian` (Debian's file,
/// intact), or `none`.
fn ipvsadm_is(c: &Chroot) -> String {
    c.ok(
        "if [ -L /usr/sbin/ipvsadm ]; then readlink -f /usr/sbin/ipvsadm | sed 's|/usr/bin/lvs-ctl|lvs-ctl|'; \
         elif [ -e /usr/sbin/ipvsadm ]; then dpkg --verify ipvsadm && echo debian; else echo none; fi",
    )
    .trim()
    .to_string()
}

#[test]
fn ipvsadm_alternative_beside_debians_ipvsadm_in_both_orders() {
    let d = packages_and_chroot_base();
    let theirs = debian_ipvsadm();
    let c = Chroot::new();
    let (hakit, ours, theirs) = (c.put(&d.hakit), c.put(&d.ipvsadm), c.put(&theirs));
    c.ok(&format!("dpkg -i {hakit} {ours}"));
    assert_eq!(ipvsadm_is(&c), "lvs-ctl");
    assert_eq!(
        c.ok("readlink -f /usr/share/man/man8/ipvsadm.8.gz").trim(),
        "/usr/share/man/man8/lvs-ctl.8.gz",
        "man ipvsadm is lvs-ctl's page"
    );
    // Named ipvsadm, lvs-ctl is ipvsadm (its help is ipvsadm's).
    let help = c.run("ipvsadm --help");
    assert!(String::from_utf8_lossy(&help.stdout).contains("ipvsadm"), "{help:?}");

    // Ours first, then Debian's: dpkg installs it without an error, its file wins;
    // removed, the trigger brings our link back.
    let out = c.run(&format!("dpkg -i {theirs}"));
    check("dpkg -i ipvsadm after hakit-ipvsadm", &out);
    assert_eq!(ipvsadm_is(&c), "debian");
    c.ok("test ! -L /usr/share/man/man8/ipvsadm.8.gz");
    c.ok("dpkg --purge ipvsadm");
    assert_eq!(ipvsadm_is(&c), "lvs-ctl", "the trigger restored the link");
    c.ok("test -L /usr/share/man/man8/ipvsadm.8.gz");

    // Debian's first, then ours: the alternative is registered, Debian's file stays,
    // and removing ours leaves it intact.
    c.ok("dpkg --purge hakit-ipvsadm");
    assert_eq!(ipvsadm_is(&c), "none");
    c.ok(&format!("dpkg -i {theirs}"));
    let out = c.run(&format!("dpkg -i {ours}"));
    check("dpkg -i hakit-ipvsadm after ipvsadm", &out);
    assert_eq!(ipvsadm_is(&c), "debian");
    assert!(c.ok("update-alternatives --list ipvsadm").contains("/usr/bin/lvs-ctl"));
    c.ok("dpkg --purge hakit-ipvsadm");
    assert_eq!(ipvsadm_is(&c), "debian");
    c.ok("dpkg --purge ipvsadm");
    assert_eq!(ipvsadm_is(&c), "none");
    c.ok("test ! -e /usr/share/man/man8/ipvsadm.8.gz && test ! -e /etc/alternatives/ipvsadm.8.gz");
    assert!(
        !c.root().join("etc/alternatives/ipvsadm").exists(),
        "/etc/alternatives/ipvsadm left"
    );
    let left = c.run("update-alternatives --list ipvsadm");
    assert!(
        !left.status.success(),
        "the alternative outlived hakit-ipvsadm: {left:?}"
    );
}

/// The crates linked into hakit's binaries for this host, as "name-version": reached
/// from hakit by normal dependencies (not dev, not build), proc-macros and what only
/// they need left out (they run in the compiler). Walked here, not by the script the
/// package uses, so a mistake in either shows.
fn linked_crates() -> Vec<String> {
    let host = check("rustc -vV", &Command::new("rustc").arg("-vV").output().unwrap())
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names no host");
    let out = Command::new("cargo")
        .args(["metadata", "--offline", "--locked", "--format-version", "1"])
        .args(["--filter-platform", &host])
        .current_dir(repo())
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_str(&check("cargo metadata", &out)).unwrap();
    let pkgs: std::collections::HashMap<&str, &serde_json::Value> = m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: std::collections::HashMap<&str, &serde_json::Value> = m["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root = m["resolve"]["root"].as_str().unwrap();
    let (mut seen, mut todo) = (std::collections::BTreeSet::new(), vec![root]);
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for d in nodes[id]["deps"].as_array().unwrap() {
            let normal = d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            let pkg = pkgs[d["pkg"].as_str().unwrap()];
            let proc_macro = pkg["targets"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "proc-macro"));
            if normal && !proc_macro {
                todo.push(d["pkg"].as_str().unwrap());
            }
        }
    }
    seen.remove(root);
    seen.iter()
        .map(|id| {
            format!(
                "{}-{}",
                pkgs[id]["name"].as_str().unwrap(),
                pkgs[id]["version"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn copyright_names_every_linked_crate_with_its_licence() {
    let dir = unpacked_hakit();
    let c = fs::read_to_string(dir.path().join("usr/share/doc/hakit/copyright")).unwrap();
    // Paragraphs, DEP-5's blank-line separated units.
    let paras: Vec<&str> = c.split("\n\n").collect();
    assert!(
        paras[0].starts_with("Format: "),
        "hakit's own head is not first:\n{}",
        paras[0]
    );
    assert!(
        c.contains("Upstream-Name: hakit\n\nFiles: *\n"),
        "hakit's own stanza lost"
    );
    let crates = linked_crates();
    assert!(crates.len() > 50, "only {} crates linked? {crates:?}", crates.len());
    for k in &crates {
        let files = format!("Files: vendored/{k}/*\n");
        let p = paras.iter().find(|p| p.starts_with(&files));
        let p = p.unwrap_or_else(|| panic!("copyright has no stanza for {k}"));
        assert!(p.contains("\nCopyright: ") && p.contains("\nLicense: "), "{k}: {p}");
    }
    let stanzas = paras.iter().filter(|p| p.starts_with("Files: vendored/")).count();
    assert_eq!(stanzas, crates.len(), "copyright names crates not linked");
    // Every licence a stanza names without text has its own paragraph with the text.
    let standalone = |id: &str| {
        paras
            .iter()
            .find(|p| p.starts_with(&format!("License: {id}\n")))
            .unwrap_or_else(|| panic!("no License: {id} paragraph"))
            .to_string()
    };
    assert!(standalone("Expat").contains("Permission is hereby granted, free of charge"));
    assert!(standalone("Apache-2.0").contains("/usr/share/common-licenses/Apache-2.0"));
    assert!(standalone("ISC").contains("Permission to use, copy, modify"));
    // An MIT-only crate, named as Debian names MIT.
    let mit = paras
        .iter()
        .find(|p| p.starts_with("Files: vendored/") && p.contains("\nLicense: Expat\n"));
    assert!(mit.is_some(), "no crate under Expat alone");
    // ring: its licences whole and the holders of its BoringSSL/OpenSSL code (blank lines
    // are " .": still one paragraph).
    let ring = paras
        .iter()
        .find(|p| p.starts_with("Files: vendored/ring-"))
        .expect("ring not in copyright");
    assert!(ring.contains("\nLicense: Apache-2.0 and ISC\n"), "{ring}");
    for notice in [
        "BoringSSL",
        "OpenSSL",
        "/usr/share/common-licenses/Apache-2.0",
        "Permission to use, copy, modify",
    ] {
        assert!(ring.contains(notice), "ring's stanza lacks {notice}");
    }
}
