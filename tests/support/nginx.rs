//! A real `nginx` (Debian's package) per test, on free loopback ports, serving what a
//! third-party API behind nginx serves: TLS with HTTP/2 and HTTP/1.1, gzip, `limit_req`,
//! `Retry-After`, redirects (same origin, another port, https to http) and mutual TLS. Requests
//! are counted from its access log. Without `nginx` on the machine these tests fail with an
//! install hint: they never pass silently.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tls::Pki;

const INSTALL_HINT: &str = "the real-server tests need Debian's `nginx` on PATH: install it with \
     `apt-get install -y nginx-light` (`.ci/run` does this)";

/// Ports of the running server.
pub struct Nginx {
    child: Option<Child>,
    dir: PathBuf,
    /// TLS with HTTP/2 and HTTP/1.1 (ALPN).
    pub h2: u16,
    /// TLS, HTTP/1.1 only.
    pub h1: u16,
    /// TLS, another origin (redirect target).
    pub other: u16,
    /// Plain http (an https-to-http redirect target).
    pub plain: u16,
    /// TLS requiring a client certificate from the test CA.
    pub mtls: u16,
    /// A port nothing listens on (a dead redirect target).
    pub dead: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Nginx {
    /// Starts nginx with a server certificate for 127.0.0.1 from `pki` and waits until every
    /// port answers.
    pub fn start(pki: &Pki) -> Nginx {
        let dir = pki.dir.join("nginx");
        std::fs::create_dir_all(dir.join("www")).expect("www dir");
        let leaf = pki.leaf("nginx", "127.0.0.1");
        // Bodies to serve: 20 MiB of bytes, and 4 MiB of text that gzip shrinks to little.
        std::fs::write(dir.join("www/big.bin"), vec![7u8; 20 << 20]).expect("big");
        let text = "id,name,amount\n1,Ada Lovelace,20.00\n".repeat((4 << 20) / 34);
        std::fs::write(dir.join("www/export.csv"), text).expect("export");
        let mut nginx = Nginx {
            child: None,
            dir,
            h2: free_port(),
            h1: free_port(),
            other: free_port(),
            plain: free_port(),
            mtls: free_port(),
            dead: free_port(),
        };
        let conf = nginx.config(&leaf.cert_file, &leaf.key_file, &pki.ca_file());
        std::fs::write(nginx.dir.join("nginx.conf"), conf).expect("conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&nginx.dir)
            .arg("-c")
            .arg(nginx.dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nginx ({e}): {INSTALL_HINT}"));
        nginx.child = Some(child);
        let started = Instant::now();
        for port in [nginx.h2, nginx.h1, nginx.other, nginx.plain, nginx.mtls] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(child) = nginx.child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    let mut stderr = String::new();
                    if let Some(mut pipe) = child.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                    }
                    panic!("nginx exited ({status}): {stderr}");
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "nginx did not start"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        nginx
    }

    fn config(&self, cert: &Path, key: &Path, ca: &Path) -> String {
        let (cert, key, ca) = (cert.display(), key.display(), ca.display());
        let dir = self.dir.display();
        let Nginx {
            h2,
            h1,
            other,
            plain,
            mtls,
            dead,
            ..
        } = self;
        let tls = format!(
            "ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.2 TLSv1.3;"
        );
        let routes = format!(
            r#"
            root {dir}/www;
            location = /small {{ default_type text/plain; return 200 "hello from nginx"; }}
            location = /big {{ try_files /big.bin =404; }}
            location = /export.csv {{ gzip on; gzip_types text/plain text/csv application/octet-stream; gzip_min_length 0; default_type text/csv; }}
            location = /limited {{ limit_req zone=partner nodelay; limit_req_status 429; default_type text/plain; return 200 "ok"; }}
            location = /unavailable {{ add_header Retry-After 1 always; return 503; }}
            location = /same {{ return 302 /small; }}
            location = /other-port {{ return 307 https://127.0.0.1:{other}/small; }}
            location = /to-http {{ return 302 http://127.0.0.1:{plain}/small; }}
            location = /to-dead {{ return 307 https://127.0.0.1:{dead}/small; }}
            "#
        );
        format!(
            r#"
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format counted '$server_port $request_method $uri $status $server_protocol';
    access_log {dir}/access.log counted;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    limit_req_zone $server_port zone=partner:1m rate=10r/s;
    server {{ listen 127.0.0.1:{h2} ssl http2; {tls} {routes} }}
    server {{ listen 127.0.0.1:{h1} ssl; {tls} {routes} }}
    server {{ listen 127.0.0.1:{other} ssl http2; {tls} {routes} }}
    server {{ listen 127.0.0.1:{plain}; {routes} }}
    server {{ listen 127.0.0.1:{mtls} ssl http2; {tls} ssl_verify_client on; ssl_client_certificate {ca}; {routes} }}
}}
"#
        )
    }

    /// `https://127.0.0.1:<port>`.
    pub fn origin(&self, port: u16) -> String {
        format!("https://127.0.0.1:{port}")
    }

    /// Access-log lines (`port method uri status protocol`) for `method` and `uri`.
    pub fn logged(&self, method: &str, uri: &str) -> Vec<String> {
        // nginx writes a line when the request ends; give the last one a moment.
        std::thread::sleep(Duration::from_millis(50));
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                let mut fields = l.split(' ').skip(1);
                fields.next() == Some(method) && fields.next() == Some(uri)
            })
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
