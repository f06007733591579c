//! The real binary on real sockets: each test starts `hello-cutover` as a child process on a free port.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const TIMEOUT: Duration = Duration::from_secs(15);

struct Server {
    child: Child,
    port: u16,
    stderr: mpsc::Receiver<String>,
    /// Every stderr line seen so far, for failure messages.
    log: Vec<String>,
}

impl Server {
    /// Starts the binary with `env` on top of a clean FLY_* environment; does not wait for it.
    fn spawn_on(port: Option<u16>, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hello-cutover"));
        for var in ["PORT", "FLY_MACHINE_ID", "FLY_REGION", "FLY_PROCESS_GROUP", "FLY_IMAGE_REF"] {
            cmd.env_remove(var);
        }
        for var in ["FLY_RELEASE_VERSION", "HELLO_SLOW_START_MS", "HELLO_ERROR_RATE"] {
            cmd.env_remove(var);
        }
        if let Some(port) = port {
            cmd.env("PORT", port.to_string());
        }
        cmd.envs(env.iter().copied()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn hello-cutover");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server { child, port: port.unwrap_or(0), stderr: rx, log: Vec::new() }
    }

    /// Starts it on a free port and waits until it says it is listening.
    fn start(env: &[(&str, &str)]) -> Server {
        let mut server = Server::spawn_on(Some(free_port()), env);
        server.wait_for_line("listening on");
        server
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits for a stderr line containing `needle` and returns it.
    fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no stderr line with {needle:?}; stderr so far: {:#?}", self.log);
    }

    /// Everything it wrote to stderr (call once it has exited).
    fn all_stderr(&mut self) -> String {
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            self.log.push(line);
        }
        self.log.join("\n")
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig})");
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running; stderr: {:#?}", self.log);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`), read to the end.
async fn get(addr: SocketAddr, path: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_string(&mut raw)).await.expect("reply in time").unwrap();
    parse(&raw)
}

fn parse(raw: &str) -> Reply {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("not an HTTP reply: {raw:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    Reply { status, head: head.to_owned(), body: body.to_owned() }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn ws_connect(addr: SocketAddr) -> Ws {
    let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(format!("ws://{addr}/ws")))
        .await
        .expect("ws connect in time")
        .expect("ws connect");
    ws
}

async fn ws_echo(ws: &mut Ws, msg: Message) {
    ws.send(msg.clone()).await.expect("ws send");
    let back = tokio::time::timeout(TIMEOUT, ws.next()).await.expect("echo in time").expect("open").unwrap();
    assert_eq!(back, msg);
}

/// Waits until connecting is refused: the listener is gone.
async fn wait_refused(addr: SocketAddr) {
    use std::io::ErrorKind::{ConnectionRefused, ConnectionReset};
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match TcpStream::connect(addr).await {
            Err(err) if err.kind() == ConnectionRefused => return,
            // Reset: it was queued on the listener as the listener closed.
            Err(err) if err.kind() == ConnectionReset => {}
            Err(err) => panic!("connect failed other than refused: {err}"),
            Ok(_) => {}
        }
        assert!(Instant::now() < deadline, "still accepting connections");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const V2: &[(&str, &str)] = &[
    ("FLY_IMAGE_REF", "registry.fly.io/hello-cutover:v2"),
    ("FLY_RELEASE_VERSION", "2"),
    ("FLY_MACHINE_ID", "148e21da9d5d89"),
    ("FLY_REGION", "ams"),
    ("FLY_PROCESS_GROUP", "app"),
];

#[tokio::test]
async fn hello_names_release_and_machine() {
    let server = Server::start(V2);
    let reply = get(server.addr(), "/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "hello from v2 on 148e21da9d5d89 (ams)\n");
    assert_eq!(reply.header("x-release-version"), Some("2"));
    assert_eq!(reply.header("x-machine-id"), Some("148e21da9d5d89"));
}

#[tokio::test]
async fn defaults_without_fly_env() {
    let server = Server::start(&[]);
    let reply = get(server.addr(), "/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "hello from v0 on local (local)\n");
}

#[tokio::test]
async fn health_is_ok() {
    let server = Server::start(V2);
    let reply = get(server.addr(), "/health").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn slow_answers_after_waiting() {
    let server = Server::start(V2);
    let reply = get(server.addr(), "/slow?ms=50").await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.starts_with("slept 50ms"), "{}", reply.body);
}

#[tokio::test]
async fn unhealthy_tag_fails_health_but_serves() {
    let server = Server::start(&[("FLY_IMAGE_REF", "registry.fly.io/hello-cutover:unhealthy")]);
    assert_eq!(get(server.addr(), "/health").await.status, 500);
    assert_eq!(get(server.addr(), "/").await.status, 200);
}

#[tokio::test]
async fn errors_tag_fails_that_share_of_requests() {
    let server = Server::start(&[("FLY_IMAGE_REF", "hello-cutover:v3-errors"), ("HELLO_ERROR_RATE", "0.5")]);
    let mut failed = 0;
    for _ in 0..10 {
        if get(server.addr(), "/").await.status == 500 {
            failed += 1;
        }
    }
    assert_eq!(failed, 5);
    assert_eq!(get(server.addr(), "/health").await.status, 200);
}

#[test]
fn crash_tag_exits_1() {
    let mut server =
        Server::spawn_on(Some(free_port()), &[("FLY_IMAGE_REF", "registry.fly.io/hello-cutover:crash")]);
    let status = server.wait_exit();
    let stderr = server.all_stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("crash"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}

#[tokio::test]
async fn slow_start_tag_waits_before_listening_and_stops_on_signal() {
    let mut server = Server::spawn_on(
        Some(free_port()),
        &[("FLY_IMAGE_REF", "hello-cutover:slow-start"), ("HELLO_SLOW_START_MS", "60000")],
    );
    server.wait_for_line("starting:");
    wait_refused(server.addr()).await;
    server.signal(libc::SIGINT);
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[test]
fn missing_or_bad_port_exits_2() {
    for port in [None, Some("http"), Some("0"), Some("70000")] {
        let env: Vec<_> = port.map(|p| ("PORT", p)).into_iter().collect();
        let mut server = Server::spawn_on(None, &env);
        let status = server.wait_exit();
        let stderr = server.all_stderr();
        assert_eq!(status.code(), Some(2), "PORT={port:?}: {stderr}");
        assert!(stderr.contains("PORT"), "{stderr}");
    }
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = StdListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut server = Server::spawn_on(Some(port), &[]);
    let status = server.wait_exit();
    let stderr = server.all_stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{stderr}");
}

#[tokio::test]
async fn websocket_echoes_text_and_binary() {
    let server = Server::start(V2);
    let mut ws = ws_connect(server.addr()).await;
    ws_echo(&mut ws, Message::text("hello")).await;
    ws_echo(&mut ws, Message::binary(vec![0u8, 1, 2, 255])).await;
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_open_websockets() {
    let mut server = Server::start(V2);
    let addr = server.addr();
    let mut ws = ws_connect(addr).await;
    ws_echo(&mut ws, Message::text("before")).await;
    let slow = tokio::spawn(get(addr, "/slow?ms=1500"));
    // Let the slow request reach the server before the signal does.
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.signal(libc::SIGTERM);
    server.wait_for_line("shutting down");
    wait_refused(addr).await;

    let reply = tokio::time::timeout(TIMEOUT, slow).await.expect("slow reply in time").unwrap();
    assert_eq!(reply.status, 200, "in-flight request cut off");
    ws_echo(&mut ws, Message::text("during shutdown")).await;
    assert!(server.running(), "exited with a WebSocket still open");

    ws.close(None).await.unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(TIMEOUT, ws.next()).await {}
    assert_eq!(server.wait_exit().code(), Some(0));
    server.wait_for_line("stopped");
}

#[tokio::test]
async fn sigint_closes_idle_keep_alive_connections() {
    let mut server = Server::start(V2);
    let mut idle = TcpStream::connect(server.addr()).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(TIMEOUT, idle.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(parse(std::str::from_utf8(&buf[..n]).unwrap()).status, 200);

    server.signal(libc::SIGINT);
    let n = tokio::time::timeout(TIMEOUT, idle.read(&mut buf)).await.expect("closed in time").unwrap_or(0);
    assert_eq!(n, 0, "idle keep-alive connection left open");
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[tokio::test]
async fn second_signal_exits_at_once() {
    let mut server = Server::start(V2);
    let _ws = ws_connect(server.addr()).await;
    server.signal(libc::SIGTERM);
    server.wait_for_line("shutting down");
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit().code(), Some(1));
}
