//! The node tier's test workload, one static binary with two modes:
//!
//! - `serve [--listen ADDR] [--data DIR] [--inspect PATH]...`: an HTTP/1.0 server.
//!   `GET /healthz` answers `ok` (the probes); `GET /report` reports, as JSON, the process's
//!   uid, gid and groups, and owner and mode of the data directory and of every `--inspect`ed
//!   path (Secret files, say); `PUT /data/<name>` writes a file into the data directory and
//!   `GET /data/<name>` reads it back.
//! - `get URL`: fetches an `http://` URL, resolving its host name through the pod's
//!   `/etc/resolv.conf` (cluster DNS), prints the body, and exits non-zero unless the status is 2xx.
//!
//! Only std, so it builds for musl into a `FROM scratch` image: no shell, no libc.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

struct ServeOptions {
    listen: String,
    data: PathBuf,
    inspect: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") | None => match serve_options(&args[args.len().min(1)..]) {
            Ok(options) => serve(&options),
            Err(message) => usage(&message),
        },
        Some("get") if args.len() == 2 => get(&args[1]),
        _ => usage("unknown command"),
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!(
        "{message}\nusage: opstack-test-workload serve [--listen ADDR] [--data DIR] [--inspect PATH]...\n       opstack-test-workload get http://HOST:PORT/PATH"
    );
    ExitCode::from(2)
}

fn serve_options(args: &[String]) -> Result<ServeOptions, String> {
    let mut options = ServeOptions {
        listen: "0.0.0.0:8080".into(),
        data: "/data".into(),
        inspect: Vec::new(),
    };
    // `--flag value` and `--flag=value`, as renderers write them.
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let value = match inline {
            Some(value) => value,
            None => args
                .next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))?,
        };
        match flag {
            "--listen" => options.listen = value,
            "--data" => options.data = value.into(),
            "--inspect" => options.inspect.push(value.into()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(options)
}

fn serve(options: &ServeOptions) -> ExitCode {
    let listener = match TcpListener::bind(&options.listen) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {}: {error}", options.listen);
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{{\"msg\":\"listening\",\"addr\":\"{}\",\"uid\":{}}}",
        options.listen,
        status_field("Uid").unwrap_or_default()
    );
    for stream in listener.incoming().flatten() {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        if let Err(error) = handle(stream, options) {
            eprintln!("request failed: {error}");
        }
    }
    ExitCode::SUCCESS
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or("/").to_owned();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    Ok(Request { method, path, body })
}

fn handle(mut stream: TcpStream, options: &ServeOptions) -> std::io::Result<()> {
    let request = read_request(&stream)?;
    let (status, body) = respond(&request, options);
    println!(
        "{{\"msg\":\"request\",\"method\":\"{}\",\"path\":\"{}\",\"status\":{status}}}",
        request.method,
        request.path.escape_default()
    );
    write!(
        stream,
        "HTTP/1.0 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        if status < 300 { "OK" } else { "Error" },
        body.len()
    )?;
    stream.write_all(body.as_bytes())
}

fn respond(request: &Request, options: &ServeOptions) -> (u16, String) {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/healthz") => (200, "ok".into()),
        ("GET", "/report") => (200, report(options)),
        (method, path) if path.starts_with("/data/") => {
            let name = &path["/data/".len()..];
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return (400, "a plain file name, please".into());
            }
            let file = options.data.join(name);
            match method {
                "PUT" => match std::fs::write(&file, &request.body) {
                    Ok(()) => (201, "written".into()),
                    Err(error) => (500, format!("write {}: {error}", file.display())),
                },
                "GET" => match std::fs::read_to_string(&file) {
                    Ok(text) => (200, text),
                    Err(error) => (404, format!("read {}: {error}", file.display())),
                },
                _ => (405, "GET or PUT".into()),
            }
        }
        _ => (404, "not found".into()),
    }
}

/// A line of /proc/self/status, e.g. `Uid` gives "1000\t1000\t1000\t1000".
fn status_field(name: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(|value| value.trim().to_owned())
}

fn first_number(value: Option<String>) -> String {
    value
        .and_then(|value| value.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "null".into())
}

fn file_json(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(meta) => format!(
            "{{\"mode\":\"{:04o}\",\"uid\":{},\"gid\":{}}}",
            meta.mode() & 0o7777,
            meta.uid(),
            meta.gid()
        ),
        Err(error) => format!("{{\"error\":\"{}\"}}", error.to_string().escape_default()),
    }
}

fn report(options: &ServeOptions) -> String {
    let groups: Vec<String> = status_field("Groups")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let files: Vec<String> = options
        .inspect
        .iter()
        .map(|path| {
            format!(
                "\"{}\":{}",
                path.display().to_string().escape_default(),
                file_json(path)
            )
        })
        .collect();
    format!(
        "{{\"uid\":{},\"gid\":{},\"groups\":[{}],\"data\":{},\"files\":{{{}}}}}",
        first_number(status_field("Uid")),
        first_number(status_field("Gid")),
        groups.join(","),
        file_json(&options.data),
        files.join(",")
    )
}

fn get(url: &str) -> ExitCode {
    match fetch(url) {
        Ok((status, body)) => {
            print!("{body}");
            if (200..300).contains(&status) {
                ExitCode::SUCCESS
            } else {
                eprintln!("{url}: HTTP {status}");
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("{url}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn fetch(url: &str) -> Result<(u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let target = address
        .to_socket_addrs()
        .map_err(|e| format!("resolve {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address} resolved to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
        .map_err(|e| format!("connect {target}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    // One write: a server may answer after its first read.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or("no HTTP status line")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &Path) -> ServeOptions {
        ServeOptions {
            listen: String::new(),
            data: dir.to_owned(),
            inspect: vec![dir.to_owned()],
        }
    }

    #[test]
    fn data_files_round_trip_and_names_stay_inside_the_data_dir() {
        let dir = std::env::temp_dir().join(format!("workload-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let put = Request {
            method: "PUT".into(),
            path: "/data/marker".into(),
            body: b"hello".to_vec(),
        };
        assert_eq!(respond(&put, &options(&dir)).0, 201);
        let get = Request {
            method: "GET".into(),
            path: "/data/marker".into(),
            body: Vec::new(),
        };
        assert_eq!(respond(&get, &options(&dir)), (200, "hello".into()));
        let escape = Request {
            method: "GET".into(),
            path: "/data/../etc/passwd".into(),
            body: Vec::new(),
        };
        assert_eq!(respond(&escape, &options(&dir)).0, 400);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn flags_take_their_value_after_a_space_or_an_equals_sign() {
        let args: Vec<String> = ["--listen=0.0.0.0:9", "--data", "/d", "--inspect=/a"]
            .map(String::from)
            .to_vec();
        let options = serve_options(&args).unwrap();
        assert_eq!(options.listen, "0.0.0.0:9");
        assert_eq!(options.data, PathBuf::from("/d"));
        assert_eq!(options.inspect, vec![PathBuf::from("/a")]);
        assert!(serve_options(&["--bogus=1".to_owned()]).is_err());
    }

    #[test]
    fn report_names_the_user_and_the_inspected_files() {
        let dir = std::env::temp_dir();
        let report = report(&options(&dir));
        assert!(report.starts_with("{\"uid\":"), "{report}");
        assert!(report.contains("\"mode\":\""), "{report}");
    }
}
