#[path = "../tests/support/server.rs"]
mod server;
use server::{Reply, TestServer};
fn main() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = TestServer::always(Reply::json(200, r#"{"ok":true}"#)).await;
            tx.send(server.origin()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let origin = rx.recv().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = outbound::Client::builder()
        .base_url(&origin)
        .allow_insecure_http(true)
        .build()
        .unwrap();
    let bare = reqwest::Client::new();
    let which = std::env::var("W").unwrap();
    let url = format!("{origin}/v1/x");
    let fut = client.get("/v1/x").send();
    eprintln!("send future: {} bytes", std::mem::size_of_val(&fut));
    drop(fut);
    let fut = bare.get(&url).send();
    eprintln!("reqwest future: {} bytes", std::mem::size_of_val(&fut));
    drop(fut);
    runtime.block_on(async {
        let cpu = || {
            std::fs::read_to_string("/proc/thread-self/schedstat")
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        let c0 = cpu();
        let t = std::time::Instant::now();
        for _ in 0..(std::env::var("N").unwrap().parse::<usize>().unwrap()) {
            if which == "o" {
                client
                    .get("/v1/x")
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
            } else {
                bare.get(&url).send().await.unwrap().bytes().await.unwrap();
            }
        }
        eprintln!(
            "{which}: {:?}/call wall, {} ns/call cpu",
            t.elapsed() / 2000,
            (cpu() - c0) / 2000
        );
    });
}
