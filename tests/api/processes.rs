//! The production topology under test: the built `agora` binary started once
//! per service (`agora serve users|products|carts|gateway`) on free loopback
//! ports, on the real servers, configured only through `AGORA_*` variables —
//! as compose runs it. Processes can be killed (SIGKILL), stopped (SIGTERM)
//! and started again on the same port; extra instances (a second gateway, a
//! second carts process) join the same deployment. Each process logs to a file
//! under the target's temporary folder; every process is killed on drop.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agora::config::Config;
use serde_json::Value;
use tokio::sync::Mutex;

const BINARY: &str = env!("CARGO_BIN_EXE_agora");
/// Bound on a process answering its `/health` after it was started.
const START_BOUND: Duration = Duration::from_secs(30);

/// One process of the deployment.
struct Proc {
    name: String,
    service: &'static str,
    addr: SocketAddr,
    env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
    starts: u32,
}

pub struct Processes {
    procs: Mutex<Vec<Proc>>,
    pub gateway: SocketAddr,
    base_env: Vec<(String, String)>,
    dir: PathBuf,
}

/// A free port on loopback (the kernel's choice, released for the process to take).
fn free_addr() -> SocketAddr {
    free_addrs::<1>()[0]
}

/// `N` distinct free addresses: each listener is held until all are chosen, or
/// the kernel may hand out one port twice (two processes asked to listen on it,
/// the second failing while the first answers for both).
fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    let listeners: Vec<TcpListener> = (0..N).map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port")).collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("a bound address"))
}

/// `config` as the `AGORA_*` variables that set it, secrets included.
fn env_of(config: &Config) -> Vec<(String, String)> {
    fn walk(name: &str, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(fields) => {
                for (key, value) in fields {
                    let key = key.to_uppercase();
                    walk(&if name.is_empty() { format!("AGORA_{key}") } else { format!("{name}__{key}") }, value, out);
                }
            }
            Value::Null => {}
            Value::String(s) => out.push((name.into(), s.clone())),
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(|i| i.as_str().unwrap_or_default().to_string()).collect();
                out.push((name.into(), items.join(",")))
            }
            other => out.push((name.into(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", &serde_json::to_value(config).unwrap(), &mut out);
    // Secrets serialize redacted: give their values.
    let secrets = [
        ("AGORA_USERS__JWT_SECRET", config.users.jwt_secret.expose()),
        ("AGORA_USERS__ADMIN_PASSWORD", config.users.admin_password.expose()),
        ("AGORA_INTERNAL__SECRET", config.internal.secret.expose()),
    ];
    out.retain(|(k, _)| !secrets.iter().any(|(s, _)| s == k));
    out.extend(secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    out
}

async fn answers(addr: SocketAddr, path: &str, within: Duration) -> bool {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("http://{addr}{path}")).send().await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

impl Proc {
    fn spawn(&mut self, dir: &PathBuf) {
        self.starts += 1;
        self.log = dir.join(format!("{}-{}.log", self.name, self.starts));
        let log = std::fs::File::create(&self.log).expect("a log file");
        let child = Command::new(BINARY)
            .args(["serve", self.service])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,agora=debug")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("agora starts");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit; its status.
    async fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Still running (not exited, e.g. for want of its port).
    fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Processes {
    /// The four services on `config` (its servers, databases, topic…), ready.
    pub async fn start(config: &Config) -> Processes {
        let dir =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("topology-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let services = ["users", "products", "carts", "gateway"];
        let addrs: HashMap<&str, SocketAddr> = services.into_iter().zip(free_addrs::<4>()).collect();
        let mut base_env = env_of(config);
        // Each process gets its own listen address; every one reaches the others at theirs.
        base_env.retain(|(k, _)| !k.ends_with("__LISTEN"));
        for service in ["users", "products", "carts"] {
            base_env.push((format!("AGORA_{}__URL", service.to_uppercase()), format!("http://{}", addrs[service])));
        }
        let processes = Processes { procs: Mutex::new(Vec::new()), gateway: addrs["gateway"], base_env, dir };
        for service in ["users", "products", "carts", "gateway"] {
            processes.add(service, service, addrs[service], &[]).await;
        }
        assert!(answers(processes.gateway, "/ready", Duration::from_secs(60)).await, "the gateway gets ready");
        processes
    }

    /// Starts one more process `name` of `service` on `addr`, with `extra` variables; waits for `/health`.
    pub async fn add(&self, name: &str, service: &'static str, addr: SocketAddr, extra: &[(&str, &str)]) -> SocketAddr {
        let mut env = self.base_env.clone();
        env.push((format!("AGORA_{}__LISTEN", service.to_uppercase()), addr.to_string()));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut proc = Proc { name: name.into(), service, addr, env, child: None, log: PathBuf::new(), starts: 0 };
        proc.spawn(&self.dir);
        let log = proc.log.clone();
        self.procs.lock().await.push(proc);
        assert!(answers(addr, "/health", START_BOUND).await, "{name} answers /health: see {}", log.display());
        assert!(self.with(name, Proc::running).await, "{name} is the one answering: see {}", log.display());
        addr
    }

    /// A free address for an extra process.
    pub fn free_addr() -> SocketAddr {
        free_addr()
    }

    async fn with<T>(&self, name: &str, f: impl FnOnce(&mut Proc) -> T) -> T {
        let mut procs = self.procs.lock().await;
        let proc = procs.iter_mut().find(|p| p.name == name).unwrap_or_else(|| panic!("no process {name}"));
        f(proc)
    }

    /// SIGKILL: no goodbye.
    pub async fn kill(&self, name: &str) {
        self.with(name, Proc::kill).await;
    }

    /// SIGTERM and wait: a graceful stop; its exit status.
    pub async fn terminate(&self, name: &str) -> Option<std::process::ExitStatus> {
        let mut procs = self.procs.lock().await;
        let proc = procs.iter_mut().find(|p| p.name == name).unwrap_or_else(|| panic!("no process {name}"));
        proc.terminate().await
    }

    /// Starts `name` again (same port, same settings) and waits for its `/health`.
    pub async fn restart(&self, name: &str) {
        let (addr, log) = {
            let mut procs = self.procs.lock().await;
            let proc = procs.iter_mut().find(|p| p.name == name).unwrap_or_else(|| panic!("no process {name}"));
            proc.kill();
            proc.spawn(&self.dir);
            (proc.addr, proc.log.clone())
        };
        assert!(answers(addr, "/health", START_BOUND).await, "{name} answers /health again: see {}", log.display());
        assert!(self.with(name, Proc::running).await, "{name} is the one answering: see {}", log.display());
    }

    pub async fn addr(&self, name: &str) -> SocketAddr {
        self.with(name, |p| p.addr).await
    }

    pub async fn pid(&self, name: &str) -> Option<u32> {
        self.with(name, |p| p.pid()).await
    }

    /// Everything `name` has logged, over all its starts.
    pub async fn logs(&self, name: &str) -> String {
        self.logs_per_start(name).await.join("\n")
    }

    /// What `name` logged, one entry per start.
    pub async fn logs_per_start(&self, name: &str) -> Vec<String> {
        let (prefix, starts) = self.with(name, |p| (p.name.clone(), p.starts)).await;
        (1..=starts)
            .map(|n| std::fs::read_to_string(self.dir.join(format!("{prefix}-{n}.log"))).unwrap_or_default())
            .collect()
    }

    /// SIGTERM to every process, the gateway first; true when all exited 0.
    pub async fn stop_all(&self) -> bool {
        let mut procs = self.procs.lock().await;
        procs.sort_by_key(|p| if p.service == "gateway" { 0 } else { 1 });
        let mut clean = true;
        for proc in procs.iter_mut() {
            let status = proc.terminate().await;
            clean &= status.is_none_or(|s| s.success());
        }
        clean
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for proc in self.procs.get_mut().iter_mut() {
            proc.kill();
        }
    }
}
