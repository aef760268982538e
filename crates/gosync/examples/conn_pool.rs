//! A pool of real TCP connections to an echo server, with limits, health checks and shutdown.
//!
//! What it shows:
//! - at most `--max-conns` connections lent out at once: each borrow holds one permit of a
//!   `Semaphore`, returned when the borrowed connection is dropped;
//! - a rate limit on acquisitions (a reservation clock under a `Mutex`: each caller books the
//!   next free slot and sleeps until it);
//! - health checks: a connection taken from the idle list is probed without blocking (a peek that
//!   sees the peer's close); broken ones are dropped and replaced, and a request that fails on a
//!   connection the server has just closed is retried on a fresh one;
//! - wait-time metrics (p50/p99) and counters (`atomic::Counter`);
//! - graceful shutdown: `close` takes every permit at once (the semaphore is FIFO, so this big
//!   request holds back new borrowers), which waits for every borrowed connection to come back,
//!   then drops the idle ones; the server, whose connection threads are in a `WaitGroup`, then
//!   sees every connection closed.
//!
//! The echo server listens on 127.0.0.1 only, on a port the OS picks, and closes each connection
//! after `--conn-life` requests so the pool has broken connections to find.
//!
//! Run it with `cargo run --example conn_pool -- --clients 8 --requests 200 --max-conns 4`.
//! Flags: `--clients`, `--requests` (per client), `--max-conns`, `--rate` (acquisitions per
//! second), `--conn-life` (requests the server serves per connection).

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync::atomic::Counter;
use gosync::context::Context;
use gosync::{Mutex, Permit, Semaphore, WaitGroup};

mod common;

use common::{usage, Invariants};

/// The echo server's side: how many connections are open now and at most.
#[derive(Default)]
struct ServerStats {
    accepted: Counter,
    open: AtomicUsize,
    max_open: AtomicUsize,
}

/// Echoes lines back; closes a connection after `life` requests. Stops accepting when `ctx` is
/// done (the caller then connects once to wake the blocked `accept`).
fn echo_server(listener: TcpListener, ctx: Context, life: usize, stats: Arc<ServerStats>) {
    let connections = Arc::new(WaitGroup::new());
    for stream in listener.incoming() {
        if ctx.is_done() {
            break;
        }
        let Ok(stream) = stream else { continue };
        stats.accepted.inc();
        let open = stats.open.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_open.fetch_max(open, Ordering::SeqCst);
        let stats = Arc::clone(&stats);
        connections.go(move || {
            let mut writer = stream.try_clone().expect("a socket clones");
            let _ = writer.set_nodelay(true);
            let lines = BufReader::new(stream).lines();
            for line in lines.take(life) {
                let Ok(line) = line else { break };
                if writer.write_all(format!("{line}\n").as_bytes()).is_err() {
                    break;
                }
            }
            stats.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    connections.wait();
}

struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn dial(addr: (Ipv4Addr, u16)) -> std::io::Result<Conn> {
        let writer = TcpStream::connect(addr)?;
        writer.set_read_timeout(Some(Duration::from_secs(5)))?;
        writer.set_nodelay(true)?; // one small request per round trip: no Nagle delay
        let reader = BufReader::new(writer.try_clone()?);
        Ok(Conn { writer, reader })
    }

    /// True when the peer has not closed the connection: a non-blocking peek sees the close as
    /// a zero-length read, and "would block" on a live, quiet connection.
    fn is_healthy(&self) -> bool {
        if !self.reader.buffer().is_empty() || self.writer.set_nonblocking(true).is_err() {
            return false;
        }
        let alive =
            matches!(self.writer.peek(&mut [0]), Err(e) if e.kind() == ErrorKind::WouldBlock);
        alive && self.writer.set_nonblocking(false).is_ok()
    }

    fn echo(&mut self, message: &str) -> std::io::Result<String> {
        self.writer.write_all(format!("{message}\n").as_bytes())?;
        let mut reply = String::new();
        if self.reader.read_line(&mut reply)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        Ok(reply.trim_end().to_string())
    }
}

#[derive(Default)]
struct PoolStats {
    dialed: Counter,
    reused: Counter,
    unhealthy: Counter,
    broken_mid_request: Counter,
    lent: AtomicUsize,
    max_lent: AtomicUsize,
    waits: Mutex<Vec<Duration>>,
}

struct Pool {
    addr: (Ipv4Addr, u16),
    permits: Semaphore,
    idle: Mutex<Vec<Conn>>,
    next_slot: Mutex<Instant>,
    interval: Duration,
    closed: AtomicBool,
    stats: PoolStats,
}

/// A borrowed connection; goes back to the idle list (and its permit to the semaphore) on drop.
struct Borrowed<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    _permit: Permit<'a>,
}

impl Pool {
    fn new(addr: (Ipv4Addr, u16), max_conns: u64, per_second: u32) -> Pool {
        Pool {
            addr,
            permits: Semaphore::new(max_conns),
            idle: Mutex::new(Vec::new()),
            next_slot: Mutex::new(Instant::now()),
            interval: Duration::from_secs(1) / per_second.max(1),
            closed: AtomicBool::new(false),
            stats: PoolStats::default(),
        }
    }

    /// Books the next acquisition slot and sleeps until it: at most one acquisition per
    /// `interval` on average, without holding the lock while sleeping.
    fn rate_limit(&self) {
        let slot = {
            let mut next = self.next_slot.lock();
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        thread::sleep(slot.saturating_duration_since(Instant::now()));
    }

    fn get(&self) -> Result<Borrowed<'_>, String> {
        let started = Instant::now();
        self.rate_limit();
        let permit = self.permits.acquire_permit(1);
        // Checked with the permit held: `close` sets the flag before taking every permit, so a
        // borrower that gets a permit after `close` emptied the idle list sees the flag.
        if self.closed.load(Ordering::SeqCst) {
            return Err("the pool is closed".into());
        }
        self.stats.waits.lock().push(started.elapsed());
        let conn = loop {
            let Some(conn) = self.idle.lock().pop() else {
                break self.dial()?;
            };
            if conn.is_healthy() {
                self.stats.reused.inc();
                break conn;
            }
            self.stats.unhealthy.inc();
        };
        let lent = self.stats.lent.fetch_add(1, Ordering::SeqCst) + 1;
        self.stats.max_lent.fetch_max(lent, Ordering::SeqCst);
        Ok(Borrowed {
            pool: self,
            conn: Some(conn),
            _permit: permit,
        })
    }

    fn dial(&self) -> Result<Conn, String> {
        self.stats.dialed.inc();
        Conn::dial(self.addr).map_err(|e| format!("dialing the echo server: {e}"))
    }

    /// Refuses new borrowers, waits (up to `timeout`) for every borrowed connection to come
    /// back, then closes the idle ones. Returns how many it closed.
    fn close(&self, timeout: Duration) -> Result<usize, String> {
        self.closed.store(true, Ordering::SeqCst);
        let all = self.permits.capacity();
        if !self.permits.try_acquire_for(all, timeout) {
            return Err(format!(
                "borrowed connections not returned within {timeout:?}"
            ));
        }
        let closed = std::mem::take(&mut *self.idle.lock()).len();
        self.permits.release(all);
        Ok(closed)
    }
}

impl Borrowed<'_> {
    /// One round trip; a connection the server closed meanwhile is replaced once.
    fn echo(&mut self, message: &str) -> Result<String, String> {
        let conn = self.conn.as_mut().expect("present until drop");
        match conn.echo(message) {
            Ok(reply) => Ok(reply),
            Err(_) => {
                self.pool.stats.broken_mid_request.inc();
                let conn = self.conn.insert(self.pool.dial()?);
                conn.echo(message)
                    .map_err(|e| format!("echo on a fresh connection: {e}"))
            }
        }
    }
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        self.pool.stats.lent.fetch_sub(1, Ordering::SeqCst);
        if let Some(conn) = self.conn.take() {
            self.pool.idle.lock().push(conn);
        }
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted
        .get(sorted.len().saturating_sub(1) * p / 100)
        .copied()
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let mut args = pico_args::Arguments::from_env();
    let parsed = (|| -> Result<_, pico_args::Error> {
        Ok((
            args.opt_value_from_str("--clients")?.unwrap_or(8usize),
            args.opt_value_from_str("--requests")?.unwrap_or(200usize),
            args.opt_value_from_str("--max-conns")?.unwrap_or(4u64),
            args.opt_value_from_str("--rate")?.unwrap_or(5_000u32),
            args.opt_value_from_str("--conn-life")?.unwrap_or(25usize),
        ))
    })();
    let (clients, requests, max_conns, rate, conn_life) = match (parsed, args.finish()) {
        (Ok(values), rest) if rest.is_empty() => values,
        (Err(e), _) => return usage(&e.to_string()),
        (_, rest) => return usage(&format!("unknown arguments {rest:?}")),
    };

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1");
    let addr = (
        Ipv4Addr::LOCALHOST,
        listener.local_addr().expect("a bound socket").port(),
    );
    let (server_ctx, stop_server) = Context::background().with_cancel();
    let server_stats = Arc::new(ServerStats::default());
    let server = {
        let stats = Arc::clone(&server_stats);
        thread::spawn(move || echo_server(listener, server_ctx, conn_life, stats))
    };
    println!("conn_pool: echo server on 127.0.0.1:{}; {clients} clients x {requests} requests, at most {max_conns} connections, {rate}/s acquisitions", addr.1);

    let pool = Pool::new(addr, max_conns, rate);
    let started = Instant::now();
    let (ok, wrong) = (Counter::new(), Counter::new());
    let errors = Mutex::new(Vec::new());
    thread::scope(|s| {
        for client in 0..clients {
            let (pool, ok, wrong, errors) = (&pool, &ok, &wrong, &errors);
            s.spawn(move || {
                for request in 0..requests {
                    let message = format!("client {client} request {request}");
                    match pool.get().and_then(|mut conn| conn.echo(&message)) {
                        Ok(reply) if reply == message => ok.inc(),
                        Ok(_) => wrong.inc(),
                        Err(e) => errors.lock().push(e),
                    }
                }
            });
        }
    });

    // Shutdown while a connection is still lent out: `close` must wait for it to come back.
    let returned = AtomicBool::new(false);
    let held = pool.get();
    let closing = WaitGroup::new();
    closing.add(1);
    let close_result = thread::scope(|s| {
        s.spawn(|| {
            closing.wait();
            if let Ok(mut held) = held {
                if held.echo("late borrower").as_deref() == Ok("late borrower") {
                    ok.inc();
                }
                returned.store(true, Ordering::SeqCst);
            }
        });
        closing.done();
        let result = pool.close(Duration::from_secs(10));
        (result, returned.load(Ordering::SeqCst))
    });
    let elapsed = started.elapsed();
    let refused_after_close = pool.get().is_err();
    stop_server.cancel();
    let _ = TcpStream::connect(addr); // wakes the server's blocked accept
    server.join().expect("the server does not panic");

    let mut waits = pool.stats.waits.lock().clone();
    waits.sort();
    let acquisitions = waits.len();
    let st = &pool.stats;
    let (dialed, accepted) = (st.dialed.value(), server_stats.accepted.value());
    let max_lent = st.max_lent.load(Ordering::SeqCst);
    let max_open = server_stats.max_open.load(Ordering::SeqCst);
    let open_at_end = server_stats.open.load(Ordering::SeqCst);
    let expected = (clients * requests) as i64 + 1;
    let (close_result, waited_for_late) = close_result;
    let errors = errors.into_inner();
    println!(
        "ran {elapsed:.2?}; acquisition wait p50 {:.2?}, p99 {:.2?}",
        percentile(&waits, 50),
        percentile(&waits, 99)
    );
    for e in errors.iter().take(5) {
        println!("error: {e}");
    }
    println!(
        "summary: requests={expected} echoed={} wrong={} errors={}",
        ok.value(),
        wrong.value(),
        errors.len()
    );
    println!("summary: acquisitions={acquisitions} dialed={dialed} accepted={accepted} reused={} unhealthy={} broken_mid_request={}", st.reused.value(), st.unhealthy.value(), st.broken_mid_request.value());
    println!("summary: max_conns={max_conns} max_lent={max_lent} max_open={max_open} open_at_end={open_at_end}");
    println!("shutdown: {close_result:?} idle connections closed after every borrower returned");

    let min_time = pool.interval * (acquisitions.saturating_sub(1) as u32);
    let checks = [
        (
            "every request was echoed back intact",
            ok.value() == expected && errors.is_empty(),
        ),
        (
            "never more than max-conns lent at once",
            max_lent as u64 <= max_conns,
        ),
        (
            "never more than max-conns open at the server",
            max_open as u64 <= max_conns,
        ),
        (
            "every dialed connection reached the server",
            dialed == accepted,
        ),
        ("the rate limit held", elapsed >= min_time),
        (
            "shutdown waited for the late borrower",
            close_result.is_ok() && waited_for_late,
        ),
        ("the closed pool refuses borrowers", refused_after_close),
        ("no connection left open at the server", open_at_end == 0),
    ];
    let mut invariants = Invariants::default();
    for (what, held) in checks {
        invariants.check(what, held);
    }
    invariants.verdict()
}
