//! CPU time and peak memory of the processes under measurement, read from Linux's /proc: the
//! worker (one process) and the Temporal dev server (a process tree: the CLI's launcher and the
//! server it runs).

use anyhow::{Context as _, anyhow};
use std::collections::HashMap;
use std::process::{Command, Stdio};

/// Clock ticks per second when `getconf CLK_TCK` cannot be asked (Linux's value everywhere).
const DEFAULT_CLK_TCK: f64 = 100.0;

pub struct Procfs {
    clk_tck: f64,
}

impl Procfs {
    pub fn new() -> Self {
        Self {
            clk_tck: clock_ticks_per_second(),
        }
    }

    /// User + system CPU time of one process so far, all threads, in seconds.
    pub fn cpu_seconds(&self, pid: u32) -> anyhow::Result<f64> {
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {path} (the bench needs Linux's /proc)"))?;
        let ticks = cpu_ticks(&stat).ok_or_else(|| anyhow!("{path}: unexpected format"))?;
        Ok(ticks as f64 / self.clk_tck)
    }

    /// The same for `root` and every process below it (those alive now).
    pub fn tree_cpu_seconds(&self, root: u32) -> anyhow::Result<f64> {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut ticks: HashMap<u32, u64> = HashMap::new();
        for entry in std::fs::read_dir("/proc").context("cannot read /proc")? {
            let Some(pid) = entry
                .ok()
                .and_then(|e| e.file_name().to_str()?.parse::<u32>().ok())
            else {
                continue;
            };
            // A process may exit between the listing and the read: skip it.
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            if let (Some(parent), Some(cpu)) = (parent_pid(&stat), cpu_ticks(&stat)) {
                children.entry(parent).or_default().push(pid);
                ticks.insert(pid, cpu);
            }
        }
        if !ticks.contains_key(&root) {
            return Err(anyhow!("process {root} is gone"));
        }
        let (mut total, mut pending) = (0u64, vec![root]);
        while let Some(pid) = pending.pop() {
            total += ticks.get(&pid).copied().unwrap_or(0);
            pending.extend(children.get(&pid).into_iter().flatten());
        }
        Ok(total as f64 / self.clk_tck)
    }

    /// Peak resident set size (VmHWM) of one process so far, in MiB.
    pub fn peak_rss_mib(&self, pid: u32) -> anyhow::Result<f64> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {path} (the bench needs Linux's /proc)"))?;
        let kib = vm_hwm_kib(&status).ok_or_else(|| anyhow!("{path}: no VmHWM line"))?;
        Ok(kib as f64 / 1024.0)
    }
}

/// The fields after the command name (field 2), which is in parentheses and may hold spaces.
fn fields_after_name(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace())
}

/// Field 4 of /proc/<pid>/stat.
fn parent_pid(stat: &str) -> Option<u32> {
    fields_after_name(stat)?.nth(1)?.parse().ok()
}

/// utime + stime (fields 14 and 15 of /proc/<pid>/stat).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let mut fields = fields_after_name(stat)?.skip(11); // field 3 is the first here
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmHWM:   12345 kB`
fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(DEFAULT_CLK_TCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_and_parent_are_counted_after_the_command_name() {
        let stat = "4242 (stephook w) S 17 4242 4242 0 -1 4194560 5000 0 0 0 \
                    170 30 0 0 20 0 9 0 12345 100000000 4000 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(200));
        assert_eq!(parent_pid(stat), Some(17));
        assert_eq!(cpu_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn peak_rss_comes_from_vm_hwm() {
        let status =
            "Name:\tstephook\nVmPeak:\t  900000 kB\nVmHWM:\t   31744 kB\nVmRSS:\t 30000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(31744));
        assert_eq!(vm_hwm_kib("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_tree_has_spent_some_cpu() {
        let procfs = Procfs::new();
        let me = std::process::id();
        let own = procfs.cpu_seconds(me).expect("own stat");
        let tree = procfs.tree_cpu_seconds(me).expect("own tree");
        assert!(tree >= own, "{tree} >= {own}");
    }
}
