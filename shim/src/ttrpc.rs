//! ttrpc over a unix socket: framing, a threaded server and a blocking client.
//!
//! A frame is a 10-byte header (length u32 BE, stream id u32 BE, type u8, flags u8)
//! and a protobuf payload: `Request {service, method, payload, timeout_nano, metadata}`
//! from the client on odd stream ids, `Response {status, payload}` back on the same id.
//! The server reads requests on one thread per connection and answers each on its own
//! thread, so a `Wait` that blocks for the life of a container holds up nothing else.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};

use crate::message;
use crate::proto::{Any, Message};

const HEADER_LEN: usize = 10;
const MAX_DATA: usize = 4 << 20;
const TYPE_REQUEST: u8 = 1;
const TYPE_RESPONSE: u8 = 2;

message!(KeyValue { 1 key: String, 2 value: String });
message!(Request {
    1 service: String, 2 method: String, 3 payload: Vec<u8>, 4 timeout_nano: i64,
    5 metadata: Vec<KeyValue>,
});
message!(Status { 1 code: i32, 2 message: String, 3 details: Vec<Any> });
message!(Response { 1 status: Option<Status>, 2 payload: Vec<u8> });

/// gRPC status codes, which containerd maps onto its errdefs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unknown = 2,
    InvalidArgument = 3,
    NotFound = 5,
    AlreadyExists = 6,
    FailedPrecondition = 9,
    Unimplemented = 12,
    Internal = 13,
}

/// An error answered to the client: a code and a message.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: Code,
    pub message: String,
}

impl RpcError {
    pub fn new(code: Code, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

pub type RpcResult<T> = Result<T, RpcError>;

pub fn write_frame(w: &mut impl Write, stream: u32, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.push(kind);
    frame.push(0);
    frame.extend_from_slice(payload);
    w.write_all(&frame)
}

/// The next frame, or None at a clean end of the connection.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u32, u8, Vec<u8>)>> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
    let stream = u32::from_be_bytes(header[4..8].try_into().unwrap());
    if len > MAX_DATA {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("ttrpc frame of {len} bytes"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((stream, header[8], payload)))
}

/// What serves requests: `(service, method, payload) -> response payload`.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, service: &str, method: &str, payload: &[u8]) -> RpcResult<Vec<u8>>;
    /// Called after the response to `method` was written (the shim exits here after
    /// Shutdown).
    fn after_response(&self, _method: &str) {}
}

/// Accept connections until the listener fails; each one is served on its own thread.
pub fn serve(listener: UnixListener, handler: Arc<dyn Handler>) -> io::Result<()> {
    loop {
        let (conn, _) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let handler = handler.clone();
        spawn("ttrpc-conn", move || {
            if let Err(e) = serve_conn(conn, handler) {
                crate::log::debug(&format!("ttrpc connection ended: {e}"));
            }
        });
    }
}

fn serve_conn(conn: UnixStream, handler: Arc<dyn Handler>) -> io::Result<()> {
    let writer = Arc::new(Mutex::new(conn.try_clone()?));
    let mut reader = conn;
    while let Some((stream, kind, payload)) = read_frame(&mut reader)? {
        if kind != TYPE_REQUEST {
            continue;
        }
        let (handler, writer) = (handler.clone(), writer.clone());
        spawn("ttrpc-req", move || {
            let mut method = String::new();
            let response = match Request::decode(&payload) {
                Ok(req) => match handler
                    .handle(&req.service, &req.method, &req.payload)
                    .inspect(|_| method = req.method.clone())
                {
                    Ok(payload) => Response {
                        status: None,
                        payload,
                    },
                    Err(e) => Response {
                        status: Some(Status {
                            code: e.code as i32,
                            message: e.message,
                            details: vec![],
                        }),
                        payload: vec![],
                    },
                },
                Err(e) => Response {
                    status: Some(Status {
                        code: Code::InvalidArgument as i32,
                        message: format!("decode ttrpc request: {e}"),
                        details: vec![],
                    }),
                    payload: vec![],
                },
            };
            let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = write_frame(&mut *w, stream, TYPE_RESPONSE, &response.encode()) {
                crate::log::debug(&format!("write ttrpc response: {e}"));
            }
            drop(w);
            handler.after_response(&method);
        });
    }
    Ok(())
}

/// Threads with a small stack: the shim's threads copy bytes and wait, nothing deep.
pub fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(128 << 10)
        .spawn(f)
        .expect("spawn a thread")
}

/// A blocking client: one call at a time on one connection.
pub struct Client {
    conn: UnixStream,
    next_stream: u32,
}

impl Client {
    pub fn connect(address: &str) -> io::Result<Client> {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        let conn = UnixStream::connect(path)?;
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        conn.set_write_timeout(Some(std::time::Duration::from_secs(10)))?;
        Ok(Client {
            conn,
            next_stream: 1,
        })
    }

    pub fn call<Req: Message, Resp: Message>(
        &mut self,
        service: &str,
        method: &str,
        req: &Req,
    ) -> io::Result<Result<Resp, Status>> {
        let stream = self.next_stream;
        self.next_stream += 2;
        let request = Request {
            service: service.to_string(),
            method: method.to_string(),
            payload: req.encode(),
            ..Default::default()
        };
        write_frame(&mut self.conn, stream, TYPE_REQUEST, &request.encode())?;
        loop {
            let (got, kind, payload) =
                read_frame(&mut self.conn)?.ok_or(io::ErrorKind::UnexpectedEof)?;
            if got != stream || kind != TYPE_RESPONSE {
                continue;
            }
            let resp = Response::decode(&payload)?;
            return Ok(match resp.status {
                Some(s) if s.code != 0 => Err(s),
                _ => Ok(Resp::decode(&resp.payload)?),
            });
        }
    }
}
