//! A minimal HTTP client for tests that load a published port on loopback.
#![allow(dead_code)] // not every test file uses each helper
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::Duration;

/// A loopback port nobody holds right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// The body of `GET path` on 127.0.0.1:`port` when it answers 200, or why not.
pub fn get(port: u16, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    let status = reply.lines().next().unwrap_or_default();
    match reply.split("\r\n\r\n").nth(1) {
        Some(body) if status.split(' ').nth(1) == Some("200") => Ok(body.trim().to_string()),
        _ => Err(format!("bad reply {reply:?}")),
    }
}
