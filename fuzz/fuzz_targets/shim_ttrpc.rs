//! The shim's side of the wire: bytes as they come from containerd's socket, through
//! ttrpc framing (`read_frame`), the ttrpc `Request` and every Task request the service
//! decodes, and the runtime options inside Create (`Options::from_any`, the TOML parser
//! of runtimeoptions, the `binary://` logger URI's percent-decoding); also what the shim
//! reads elsewhere (BootstrapParams on stdin, a `Response` as a client).
//! Checks: no panic; every allocation bounded by the input, not by a length field (the
//! run sets -malloc_limit_mb); a decoded message encodes to bytes that decode to itself.

#![no_main]

use std::fmt::Debug;
use std::io::Cursor;

use containerd_shim_patina::options::Options;
use containerd_shim_patina::proto::*;
use containerd_shim_patina::ttrpc::{read_frame, Request, Response};
use libfuzzer_sys::fuzz_target;

/// decode, and if it decodes, encode -> decode gives the same message.
fn round_trip<M: Message + PartialEq + Debug>(bytes: &[u8]) -> Option<M> {
    let m = M::decode(bytes).ok()?;
    let again = M::decode(&m.encode()).expect("an encoded message decodes");
    assert_eq!(again, m);
    Some(m)
}

/// Every Task request `Service::handle` decodes, as it would (by method name).
fn task_request(method: &str, payload: &[u8]) {
    match method {
        "State" => drop(round_trip::<StateRequest>(payload)),
        "Create" => {
            if let Some(req) = round_trip::<CreateTaskRequest>(payload) {
                runtime_options(req.options.as_ref());
                for uri in [&req.stdout, &req.stderr] {
                    logger_uri(uri);
                }
            }
        }
        "Start" => drop(round_trip::<StartRequest>(payload)),
        "Delete" => drop(round_trip::<DeleteRequest>(payload)),
        "Pids" => drop(round_trip::<PidsRequest>(payload)),
        "Pause" => drop(round_trip::<PauseRequest>(payload)),
        "Resume" => drop(round_trip::<ResumeRequest>(payload)),
        "Checkpoint" => drop(round_trip::<CheckpointTaskRequest>(payload)),
        "Kill" => drop(round_trip::<KillRequest>(payload)),
        "Exec" => drop(round_trip::<ExecProcessRequest>(payload)),
        "ResizePty" => drop(round_trip::<ResizePtyRequest>(payload)),
        "CloseIO" => drop(round_trip::<CloseIORequest>(payload)),
        "Update" => drop(round_trip::<UpdateTaskRequest>(payload)),
        "Wait" => drop(round_trip::<WaitRequest>(payload)),
        "Stats" => drop(round_trip::<StatsRequest>(payload)),
        "Connect" => drop(round_trip::<ConnectRequest>(payload)),
        "Shutdown" => drop(round_trip::<ShutdownRequest>(payload)),
        _ => {}
    }
}

/// `Options::from_any`, except that a runtimeoptions `config_path` is not read (it
/// names a file on the host: the fuzzer would open whatever it spells).
fn runtime_options(any: Option<&Any>) {
    if let Some(a) = any {
        if a.type_url
            .ends_with(containerd_shim_patina::options::RUNTIME_OPTIONS)
        {
            match RuntimeOptions::decode(&a.value) {
                Ok(o) if o.config_body.is_empty() && !o.config_path.is_empty() => return,
                _ => {}
            }
        }
    }
    let _ = Options::from_any(any);
}

/// `binary:///path?k=v&...`: the logger's program and arguments, percent-decoded.
fn logger_uri(uri: &str) {
    if let Some(rest) = uri.strip_prefix("binary://") {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let _ = containerd_shim_patina::io::percent_decode(path);
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let _ = containerd_shim_patina::io::percent_decode(k);
            let _ = containerd_shim_patina::io::percent_decode(v);
        }
    }
}

const METHODS: [&str; 17] = [
    "State",
    "Create",
    "Start",
    "Delete",
    "Pids",
    "Pause",
    "Resume",
    "Checkpoint",
    "Kill",
    "Exec",
    "ResizePty",
    "CloseIO",
    "Update",
    "Wait",
    "Stats",
    "Connect",
    "Shutdown",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        // A connection's byte stream: frames until the end or the first error.
        0 => {
            let mut conn = Cursor::new(bytes);
            while let Ok(Some((_stream, kind, payload))) = read_frame(&mut conn) {
                match kind {
                    1 => {
                        if let Some(req) = round_trip::<Request>(&payload) {
                            task_request(&req.method, &req.payload);
                        }
                    }
                    _ => drop(round_trip::<Response>(&payload)),
                }
            }
        }
        // One payload as each Task request (the fuzzer need not spell method names).
        1 => {
            let method = METHODS[usize::from(selector / 4) % METHODS.len()];
            task_request(method, bytes);
        }
        // The runtime options: an Any (stdin of `start`), a runtimeoptions TOML body.
        2 => {
            if let Some(any) = round_trip::<Any>(bytes) {
                runtime_options(Some(&any));
            }
            let _ = Options::from_toml(&String::from_utf8_lossy(bytes));
            logger_uri(&format!("binary://{}", String::from_utf8_lossy(bytes)));
        }
        // containerd 2.x's bootstrap parameters on stdin.
        _ => drop(round_trip::<BootstrapParams>(bytes)),
    }
});
