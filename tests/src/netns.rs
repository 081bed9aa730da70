//! A separate "host" on this machine: a network namespace joined to the test's namespace by a
//! veth pair, which a test can make vanish without a trace.
//!
//! [`Netns::vanish`] installs an nftables rule set inside the namespace that drops every IP
//! packet in and out: peers get no RST and no ICMP, exactly as when a machine loses power or
//! its network. Nothing outside the namespace is touched (no rule in this namespace's
//! firewall), so tests running beside it are unaffected.
//!
//! Needs root (`ip netns add`) and the `ip` and `nft` commands (iproute2, nftables). Each
//! namespace has a name and an address block of its own, derived from the test process's pid;
//! dropping the [`Netns`] deletes the namespace and its veth pair, and creating one first deletes
//! what earlier test processes that were killed before they could clean up left behind.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Every namespace this harness creates is named `{PREFIX}{pid}-{n}`.
const PREFIX: &str = "herald-t";

/// A network namespace with one veth link to the test's namespace.
pub struct Netns {
    name: String,
    outer_link: String,
    outer: Ipv4Addr,
    inner: Ipv4Addr,
}

/// Runs `ip`/`nft` with `args`; panics with its output if it fails.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (install iproute2 and nftables): {e}"));
    assert!(
        output.status.success(),
        "{program} {} failed (network namespaces need root): {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a cleanup command, ignoring failure (the thing may already be gone).
fn run_quietly(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).output();
}

/// Deletes namespaces left by test processes that no longer run.
fn sweep_leftovers() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !std::path::Path::new("/proc").join(pid).exists() {
            run_quietly("ip", &["netns", "del", name]);
        }
    }
}

/// Whether `address` is already assigned to an interface of this namespace.
fn in_use(address: Ipv4Addr) -> bool {
    Command::new("ip")
        .args(["-o", "addr", "show"])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).contains(&format!(" {address}/")))
        .unwrap_or(false)
}

impl Netns {
    /// Creates a namespace, a veth pair between it and this namespace, and a /30 of
    /// 100.64.0.0/10 (shared address space, never routed here) for the two ends.
    pub fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        sweep_leftovers();
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{pid}-{n}");
        // Interface names have at most 15 characters.
        let outer_link = format!("hto{}", pid * 16 + n % 16);
        let inner_link = format!("hti{}", pid * 16 + n % 16);
        let mut block = (pid.wrapping_mul(16).wrapping_add(n)) % (1 << 20);
        let block_address = |block: u32| u32::from(Ipv4Addr::new(100, 64, 0, 0)) + block * 4;
        while in_use(Ipv4Addr::from(block_address(block) + 1)) {
            block = (block + 1) % (1 << 20);
        }
        let outer = Ipv4Addr::from(block_address(block) + 1);
        let inner = Ipv4Addr::from(block_address(block) + 2);
        run("ip", &["netns", "add", &name]);
        // From here on, dropping `netns` removes what was made, even if a later step panics.
        let netns = Self {
            name,
            outer_link,
            outer,
            inner,
        };
        let name = netns.name.as_str();
        run(
            "ip",
            &[
                "link",
                "add",
                &netns.outer_link,
                "type",
                "veth",
                "peer",
                "name",
                &inner_link,
                "netns",
                name,
            ],
        );
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{outer}/30"),
                "dev",
                &netns.outer_link,
            ],
        );
        run("ip", &["link", "set", &netns.outer_link, "up"]);
        run(
            "ip",
            &[
                "-n",
                name,
                "addr",
                "add",
                &format!("{inner}/30"),
                "dev",
                &inner_link,
            ],
        );
        run("ip", &["-n", name, "link", "set", &inner_link, "up"]);
        run("ip", &["-n", name, "link", "set", "lo", "up"]);
        netns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address of this (the test's) end of the veth pair, as the namespace reaches it.
    pub fn outer_ip(&self) -> IpAddr {
        IpAddr::V4(self.outer)
    }

    /// The namespace's own address, as the test's namespace reaches it.
    pub fn inner_ip(&self) -> IpAddr {
        IpAddr::V4(self.inner)
    }

    /// The launcher that runs a program inside the namespace
    /// (see [`crate::process::Launch::under`]).
    pub fn launcher(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }

    /// The host vanishes: from now on every IP packet into or out of the namespace is dropped
    /// without an answer (no RST, no ICMP).
    pub fn vanish(&self) {
        let rules = "table inet vanish {\n\
                     \tchain input { type filter hook input priority -300; policy drop; }\n\
                     \tchain output { type filter hook output priority -300; policy drop; }\n\
                     }\n";
        let file = std::env::temp_dir().join(format!("{}.nft", self.name));
        std::fs::write(&file, rules).expect("the rule file can be written");
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.name,
                "nft",
                "-f",
                file.to_str().expect("a UTF-8 temporary path"),
            ],
        );
        let _ = std::fs::remove_file(file);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        run_quietly("ip", &["netns", "del", &self.name]);
        // Deleting the namespace deletes the veth pair with it, but only once nothing runs in
        // the namespace any more; delete this end now so the address block is free at once.
        run_quietly("ip", &["link", "del", &self.outer_link]);
    }
}
