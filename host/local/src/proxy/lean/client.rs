//! The client's socket on the lean path, written so that a new connection per request costs no
//! system call nor segment it does not need (BENCHMARKS.md, issue 20).
//!
//! - **In the event loop only once it has to wait.** A connection comes from the accept as a plain
//!   non-blocking socket. Reads and writes go straight to it, and only one that would block puts it in
//!   the thread's event loop (two `epoll_ctl` calls and tokio's bookkeeping: one to add it, one to take
//!   it out at the close). The listener defers the accept until the request is in, so a client with
//!   one small request and `Connection: close` is read, answered and closed without it ever
//!   being registered; a keep-alive client is registered when it goes quiet after its first answer.
//! - **`TCP_NODELAY` only before a second write.** A connection's first write goes out at once
//!   whatever Nagle's algorithm says (nothing of the connection's is in flight to wait for), so the
//!   option is set only before a second one, when a small segment could otherwise wait for the
//!   client's delayed acknowledgement. One answer in one write and a close needs no system call for
//!   it, as nginx spares it.
//! - **The FIN on the answer's last segment.** The last bytes of an answer after which the connection
//!   closes go with `MSG_MORE`: the kernel holds the last partial segment, and the close that
//!   follows at once sends it with the FIN on it. One segment instead of two, for the proxy to send
//!   and for the client to take in.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::TcpStream;

/// The client's connection, as the lean path reads and writes it.
pub(in crate::proxy) struct Client {
    socket: Socket,
    /// Something was written.
    wrote: bool,
    /// `TCP_NODELAY` is set.
    nodelay: bool,
    /// The connection closes once the answer being written is out (set before it is written).
    pub(super) closing: bool,
}

/// Where the socket is: out of the event loop until something on it has to wait.
enum Socket {
    /// Every read and write so far went through at once (non-blocking, not registered).
    Plain(std::net::TcpStream),
    /// In the thread's event loop.
    Registered(TcpStream),
    /// Registering it failed; it is closed.
    Gone,
}

impl Client {
    /// A client's accepted socket, non-blocking and in no event loop.
    pub(in crate::proxy) fn new(stream: std::net::TcpStream) -> Client {
        Client { socket: Socket::Plain(stream), wrote: false, nodelay: false, closing: false }
    }

    /// The socket as a tokio stream, for the hyper path (registered now if it was not).
    pub(super) fn into_stream(mut self) -> io::Result<TcpStream> {
        self.registered()?;
        match self.socket {
            Socket::Registered(stream) => Ok(stream),
            _ => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Reads what the client sent into `buf`'s spare capacity (the caller reserves it); `Ok(0)`: the
    /// client closed its side.
    pub(super) async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if let Socket::Plain(stream) = &self.socket {
            match recv_into(stream.as_raw_fd(), buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
        }
        self.registered()?.read_buf(buf).await
    }

    /// Writes `bytes` of an answer; `last`: they end it.
    pub(super) async fn write(&mut self, bytes: &[u8], last: bool) -> io::Result<()> {
        if last && self.closing { self.write_closing(bytes).await } else { self.write_all(bytes).await }
    }

    /// Writes all of `bytes`, turning Nagle's algorithm off before any write but the first.
    pub(super) async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if std::mem::replace(&mut self.wrote, true) {
            self.nodelay();
        }
        loop {
            bytes = &bytes[self.send(bytes, libc::MSG_NOSIGNAL).await?..];
            if bytes.is_empty() {
                return Ok(());
            }
            // The rest is a second write.
            self.nodelay();
        }
    }

    /// Writes all of the connection's last bytes with `MSG_MORE`. The caller closes the socket right
    /// after (no await in between): until the close the kernel may hold the last partial segment.
    async fn write_closing(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.wrote = true;
            bytes = &bytes[self.send(bytes, libc::MSG_MORE | libc::MSG_NOSIGNAL).await?..];
        }
        Ok(())
    }

    /// One `send` of some of `bytes` (at least one), waiting for room in the socket if there is none.
    async fn send(&mut self, bytes: &[u8], flags: libc::c_int) -> io::Result<usize> {
        let n = 'sent: {
            if let Socket::Plain(stream) = &self.socket {
                match send_from(stream.as_raw_fd(), bytes, flags) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    done => break 'sent done?,
                }
            }
            let stream = self.registered()?;
            let fd = stream.as_raw_fd();
            stream.async_io(Interest::WRITABLE, || send_from(fd, bytes, flags)).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        Ok(n)
    }

    /// The socket in the thread's event loop, put there now if it was not.
    fn registered(&mut self) -> io::Result<&mut TcpStream> {
        if matches!(self.socket, Socket::Plain(_))
            && let Socket::Plain(stream) = std::mem::replace(&mut self.socket, Socket::Gone)
        {
            self.socket = Socket::Registered(TcpStream::from_std(stream)?);
        }
        match &mut self.socket {
            Socket::Registered(stream) => Ok(stream),
            _ => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Turns Nagle's algorithm off, once.
    fn nodelay(&mut self) {
        if !std::mem::replace(&mut self.nodelay, true) {
            let _ = match &self.socket {
                Socket::Plain(stream) => stream.set_nodelay(true),
                Socket::Registered(stream) => stream.set_nodelay(true),
                Socket::Gone => Ok(()),
            };
        }
    }

    /// Whether the socket is in the event loop.
    #[cfg(test)]
    pub(super) fn is_registered(&self) -> bool {
        matches!(self.socket, Socket::Registered(_))
    }

    /// The socket's `TCP_NODELAY`.
    #[cfg(test)]
    pub(super) fn has_nodelay(&self) -> bool {
        match &self.socket {
            Socket::Plain(stream) => stream.nodelay().unwrap(),
            Socket::Registered(stream) => stream.nodelay().unwrap(),
            Socket::Gone => false,
        }
    }
}

/// One non-blocking `recv` into `buf`'s spare capacity.
fn recv_into(fd: RawFd, buf: &mut BytesMut) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    // SAFETY: `fd` is an open socket, and `spare` is writable for its length.
    let n = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), spare.len(), libc::MSG_DONTWAIT) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: the kernel wrote the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// One non-blocking `send` of `bytes` with `flags`.
fn send_from(fd: RawFd, bytes: &[u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `fd` is an open socket, and `bytes` is readable for its length.
    let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), flags | libc::MSG_DONTWAIT) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A connected pair: the proxy's side as a [`Client`] as the accept gives it, and the client's.
    async fn pair() -> (Client, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (stream, _) = listener.accept().unwrap();
        stream.set_nonblocking(true).unwrap();
        (Client::new(stream), client)
    }

    #[tokio::test]
    async fn a_request_and_its_answer_that_go_through_at_once_leave_the_socket_out_of_the_event_loop() {
        let (mut proxy, mut client) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        // As the deferred accept has it: the request is in before the proxy reads.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut buf = BytesMut::with_capacity(1024);
        assert_eq!(proxy.read_buf(&mut buf).await.unwrap(), 18);
        assert!(!proxy.is_registered(), "a read with bytes waiting needs no event loop");
        proxy.closing = true;
        proxy.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", true).await.unwrap();
        assert!(!proxy.is_registered(), "nor a write with room");
        drop(proxy);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    }

    #[tokio::test]
    async fn a_read_with_nothing_to_read_waits_in_the_event_loop_for_the_bytes() {
        let (mut proxy, mut client) = pair().await;
        let reader = tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(1024);
            let n = proxy.read_buf(&mut buf).await.unwrap();
            (proxy.is_registered(), buf.split_to(n))
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        client.write_all(b"late").await.unwrap();
        let (registered, got) = reader.await.unwrap();
        assert!(registered, "it had to wait");
        assert_eq!(&got[..], b"late");
    }

    #[tokio::test]
    async fn the_client_closing_reads_as_zero_bytes() {
        let (mut proxy, client) = pair().await;
        drop(client);
        let mut buf = BytesMut::with_capacity(64);
        assert_eq!(proxy.read_buf(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn nagle_is_turned_off_at_a_connections_second_write_and_not_before() {
        let (mut proxy, mut client) = pair().await;
        proxy.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nok", false).await.unwrap();
        assert!(!proxy.has_nodelay(), "one answer in one write needs no system call");
        proxy.write(b"more", true).await.unwrap();
        assert!(proxy.has_nodelay(), "a second write could wait for a delayed ack");
        let mut got = vec![0u8; 44];
        client.read_exact(&mut got).await.unwrap();
        assert!(got.ends_with(b"okmore"));
    }

    #[tokio::test]
    async fn a_first_write_the_socket_takes_only_in_part_waits_for_room_with_nagle_off_for_the_rest() {
        let (mut proxy, mut client) = pair().await;
        // Far more than a socket's send buffer: the first write goes in pieces.
        let big = vec![b'x'; 16 << 20];
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got.len()
        });
        proxy.write(&big, false).await.unwrap();
        assert!(proxy.has_nodelay(), "the rest of the first write went with Nagle off");
        assert!(proxy.is_registered(), "it waited for room");
        drop(proxy);
        assert_eq!(reader.await.unwrap(), big.len(), "every byte arrived");
    }

    #[tokio::test]
    async fn the_last_bytes_before_a_close_all_arrive_with_the_close() {
        for size in [40, 100_000, 4 << 20] {
            let (mut proxy, mut client) = pair().await;
            let answer: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                client.read_to_end(&mut got).await.unwrap();
                got
            });
            proxy.closing = true;
            proxy.write(&answer[..size / 2], false).await.unwrap();
            proxy.write(&answer[size / 2..], true).await.unwrap();
            drop(proxy);
            assert!(reader.await.unwrap() == answer, "{size} bytes, in order, then the end");
        }
    }

    #[tokio::test]
    async fn handed_to_hyper_the_socket_is_registered_with_nothing_lost() {
        let (proxy, mut client) = pair().await;
        let mut stream = proxy.into_stream().unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        stream.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
    }
}
