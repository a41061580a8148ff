//! A real `redis-server` per test, on a free loopback port, without persistence, stopped by its
//! pid when the test ends. Without `redis-server` on the machine, the fleet tests fail with an
//! install hint: they never pass silently.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `redis-server` process.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

const INSTALL_HINT: &str = "the fleet tests need a real `redis-server` on PATH: install the \
     Debian package with `apt-get install -y redis-server` (`.ci/run` does this)";

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers.
    pub fn start() -> RedisServer {
        // A port found free may be taken by another test before the server binds it: then the
        // server exits, and another port is tried.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let dir =
                std::env::temp_dir().join(format!("outbound-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("redis dir");
            let mut server = RedisServer {
                child: None,
                port,
                dir,
            };
            if server.try_spawn() {
                return server;
            }
        }
        panic!("redis-server could not bind a free loopback port in 5 tries");
    }

    fn spawn(&mut self) {
        for _ in 0..20 {
            if self.try_spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server could not bind port {} again", self.port);
    }

    /// Starts the server on `self.port`; false if it exited (the port was taken).
    fn try_spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server ({e}): {INSTALL_HINT}"));
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && matches!(child.try_wait(), Ok(Some(_)))
            {
                self.child = None;
                return false;
            }
            if self.answers() && self.is_ours() {
                return true;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer on port {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server on the port is the process this started.
    fn is_ours(&self) -> bool {
        let info: String = redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("INFO").arg("server").query(&mut c))
            .unwrap_or_default();
        let pid = self.child.as_ref().map(Child::id);
        info.lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
            == pid
    }

    fn answers(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal}");
    }

    /// SIGKILL: the server is gone at once, connections reset.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A new server on the same port, with empty memory (as after a crash).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts the server again after [`kill`](Self::kill).
    pub fn revive(&mut self) {
        self.spawn();
    }

    /// Forgets every key.
    pub fn flush(&self) {
        let _: () = redis::cmd("FLUSHALL")
            .query(&mut self.connection())
            .expect("FLUSHALL");
    }

    /// Connected clients, not counting the connection that asks.
    pub fn clients(&self) -> usize {
        let Ok(mut c) = redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
        else {
            return 0;
        };
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut c)
            .unwrap_or_default();
        list.lines().count().saturating_sub(1)
    }

    /// SIGSTOP: connections stay open and nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`freeze`](Self::freeze).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// A direct connection, to look at what the client stored.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("redis connection")
    }

    /// Every key, with its raw value (`GET` for strings) and its `DUMP`.
    pub fn dump(&self) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        let mut c = self.connection();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).expect("KEYS");
        keys.into_iter()
            .map(|key| {
                let value: Option<Vec<u8>> =
                    redis::cmd("GET").arg(&key).query(&mut c).unwrap_or(None);
                let dump: Option<Vec<u8>> =
                    redis::cmd("DUMP").arg(&key).query(&mut c).expect("DUMP");
                (key, value.unwrap_or_default(), dump.unwrap_or_default())
            })
            .collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A frozen server ignores SIGKILL only until it is continued; continue it first.
            let _ = Command::new("kill")
                .args(["-CONT", &self.pid().to_string()])
                .status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
