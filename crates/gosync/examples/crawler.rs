//! A polite web crawler over a site it serves itself on 127.0.0.1.
//!
//! What it shows:
//! - a worker pool (`WaitGroup`) sharing a frontier queue (`Mutex` + `Cond`) that knows when the
//!   crawl is over: no queued URL and no URL being fetched;
//! - the visited set as a `Map`: `load_or_store` lets exactly one worker claim each URL;
//! - per-host state created on first sight (`Map::load_or_store_with`): a `Semaphore` bounding
//!   the requests in flight to that host, its robots.txt fetched once however many workers ask
//!   (`OnceCell::get_or_init`), and a politeness delay between request starts (a `Mutex` over the
//!   last start, held while waiting for the next slot);
//! - a `Context` that ends the crawl: on timeout (`--timeout-ms`) or cancelled after
//!   `--max-pages`; every wait (`Semaphore::acquire_ctx`, `Cond::wait_ctx`) listens to it.
//!
//! The site: `--hosts` HTTP servers (`tiny_http`, each on its own 127.0.0.1 port) with
//! `--pages` pages each; page `i` links to page `i + 1`, two other pages of its host, the same
//! page on the next host, and a page under `/private/`, which every robots.txt disallows. The
//! servers count every request, so the checks come from their side: each page fetched exactly
//! once, nothing disallowed fetched, limits kept. The client is `ureq`.
//!
//! Run it with `cargo run --example crawler -- --hosts 3 --pages 20 --workers 6`.
//! Flags: `--hosts`, `--pages`, `--workers`, `--per-host` (requests in flight per host),
//! `--delay-ms` (politeness delay per host), `--max-pages`, `--timeout-ms`.

use std::collections::{HashMap, VecDeque};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use gosync::atomic::Counter;
use gosync::context::Context;
use gosync::{Cond, Map, Mutex, OnceCell, Semaphore, WaitGroup};

mod common;

use common::{usage, Invariants};

// ---- the site -------------------------------------------------------------------------------

const ROBOTS: &str = "User-agent: *\nDisallow: /private/\n";

/// What one server saw: requests per path, and the most requests in flight at once.
#[derive(Default)]
struct SiteLog {
    hits: Mutex<HashMap<String, usize>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

struct Site {
    server: Arc<tiny_http::Server>,
    port: u16,
    log: Arc<SiteLog>,
    handlers: Vec<JoinHandle<()>>,
}

fn page_html(host: usize, page: usize, hosts: &[u16], pages: usize) -> String {
    let here = format!("http://127.0.0.1:{}", hosts[host]);
    let next_host = format!("http://127.0.0.1:{}", hosts[(host + 1) % hosts.len()]);
    let links = [
        format!("/page/{}", (page + 1) % pages),
        format!("/page/{}", (page * 7 + 3) % pages),
        format!("{here}/page/{}", (page * 3 + 1) % pages),
        format!("{next_host}/page/{page}"),
        format!("/private/{page}"),
    ];
    let anchors: String = links
        .iter()
        .map(|l| format!("<a href=\"{l}\">{l}</a>\n"))
        .collect();
    format!("<html><body><h1>host {host} page {page}</h1>\n{anchors}</body></html>\n")
}

/// Starts one server per host on 127.0.0.1 (ports picked by the OS), each with four handler
/// threads so that the per-host limit, not the server, bounds concurrency.
fn start_site(hosts: usize, pages: usize) -> Vec<Site> {
    let servers: Vec<Arc<tiny_http::Server>> = (0..hosts)
        .map(|_| Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("binding 127.0.0.1")))
        .collect();
    let ports: Arc<[u16]> = servers
        .iter()
        .map(|s| s.server_addr().to_ip().expect("an IP listener").port())
        .collect();
    let sites = servers.into_iter().enumerate().map(|(host, server)| {
        let log = Arc::new(SiteLog::default());
        let handlers = (0..4)
            .map(|_| {
                let (server, log, ports) =
                    (Arc::clone(&server), Arc::clone(&log), Arc::clone(&ports));
                thread::spawn(move || {
                    while let Ok(request) = server.recv() {
                        let path = request.url().to_string();
                        let now = log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        log.max_in_flight.fetch_max(now, Ordering::SeqCst);
                        *log.hits.lock().entry(path.clone()).or_default() += 1;
                        let page = path
                            .strip_prefix("/page/")
                            .and_then(|n| n.parse::<usize>().ok());
                        let response = match (path.as_str(), page) {
                            ("/robots.txt", _) => tiny_http::Response::from_string(ROBOTS),
                            (_, Some(page)) if page < pages => tiny_http::Response::from_string(
                                page_html(host, page, &ports, pages),
                            ),
                            _ if path.starts_with("/private/") => {
                                tiny_http::Response::from_string("secret")
                            }
                            _ => {
                                tiny_http::Response::from_string("not found").with_status_code(404)
                            }
                        };
                        // Before responding: the client's next request can only follow this
                        // response, so a count taken after it would overlap the two.
                        log.in_flight.fetch_sub(1, Ordering::SeqCst);
                        let _ = request.respond(response);
                    }
                })
            })
            .collect();
        Site {
            port: ports[host],
            server,
            log,
            handlers,
        }
    });
    sites.collect()
}

// ---- the crawler ----------------------------------------------------------------------------

/// Per host: created by the first worker that meets the host.
struct Host {
    permits: Semaphore,
    disallowed: OnceCell<Vec<String>>,
    last_start: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct FrontierState {
    queue: VecDeque<String>,
    /// URLs queued or being fetched; the crawl is over when it reaches zero.
    outstanding: usize,
}

struct Crawler {
    agent: ureq::Agent,
    frontier: Mutex<FrontierState>,
    changed: Cond,
    visited: Map<String, ()>,
    hosts: Map<String, Arc<Host>>,
    per_host: u64,
    delay: Duration,
    fetched: Counter,
    skipped_by_robots: Counter,
    errors: Mutex<Vec<String>>,
    /// Per host, the gaps between consecutive request starts; checked against `delay`.
    min_gap: Mutex<Option<Duration>>,
}

impl Crawler {
    /// Queues `url` unless some worker has claimed it already.
    fn offer(&self, url: String) {
        if self.visited.load_or_store(url.clone(), ()).1 {
            return; // loaded: someone else has it
        }
        let mut frontier = self.frontier.lock();
        frontier.queue.push_back(url);
        frontier.outstanding += 1;
        self.changed.signal();
    }

    /// The next URL; `None` when the crawl is over or `ctx` is done.
    fn next(&self, ctx: &Context) -> Option<String> {
        let mut frontier = self.frontier.lock();
        loop {
            if ctx.is_done() {
                return None;
            }
            if let Some(url) = frontier.queue.pop_front() {
                return Some(url);
            }
            if frontier.outstanding == 0 || self.changed.wait_ctx(&mut frontier, ctx).is_err() {
                return None;
            }
        }
    }

    fn finished(&self) {
        let mut frontier = self.frontier.lock();
        frontier.outstanding -= 1;
        if frontier.outstanding == 0 {
            self.changed.broadcast(); // wake every idle worker: nothing more will come
        }
    }

    fn get(&self, url: &str) -> Result<String, String> {
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| format!("{url}: {e}"))?;
        response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))
    }

    fn crawl_one(&self, url: &str, ctx: &Context) -> Result<(), String> {
        let (origin, path) = split_url(url).ok_or_else(|| format!("not a URL: {url}"))?;
        let (host, _) = self.hosts.load_or_store_with(origin.to_string(), || {
            let permits = Semaphore::new(self.per_host);
            Arc::new(Host {
                permits,
                disallowed: OnceCell::new(),
                last_start: Mutex::new(None),
            })
        });
        let disallowed = host.disallowed.get_or_init(|| {
            let robots = self
                .get(&format!("{origin}/robots.txt"))
                .unwrap_or_default();
            robots
                .lines()
                .filter_map(|l| l.strip_prefix("Disallow:"))
                .map(|p| p.trim().to_string())
                .collect()
        });
        if disallowed
            .iter()
            .any(|prefix| !prefix.is_empty() && path.starts_with(prefix.as_str()))
        {
            self.skipped_by_robots.inc();
            return Ok(());
        }
        host.permits
            .acquire_ctx(ctx, 1)
            .map_err(|e| format!("{url}: {e}"))?;
        let body = {
            let mut last = host.last_start.lock();
            if let Some(last) = *last {
                thread::sleep((last + self.delay).saturating_duration_since(Instant::now()));
            }
            let now = Instant::now();
            if let Some(gap) = last.map(|last| now - last) {
                let mut min_gap = self.min_gap.lock();
                *min_gap = Some(min_gap.map_or(gap, |g| g.min(gap)));
            }
            *last = Some(now);
            drop(last);
            let body = self.get(url);
            host.permits.release(1);
            body?
        };
        self.fetched.inc();
        for link in body
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
        {
            let absolute = if link.starts_with('/') {
                format!("{origin}{link}")
            } else {
                link.to_string()
            };
            self.offer(absolute);
        }
        Ok(())
    }
}

/// `http://127.0.0.1:8080/page/3` → (`http://127.0.0.1:8080`, `/page/3`).
fn split_url(url: &str) -> Option<(&str, &str)> {
    let after_scheme = url.strip_prefix("http://")?;
    let slash = after_scheme.find('/').unwrap_or(after_scheme.len());
    Some(url.split_at("http://".len() + slash))
        .map(|(o, p)| (o, if p.is_empty() { "/" } else { p }))
}

fn main() -> ExitCode {
    let mut args = pico_args::Arguments::from_env();
    let parsed = (|| -> Result<_, pico_args::Error> {
        Ok((
            args.opt_value_from_str("--hosts")?.unwrap_or(3usize),
            args.opt_value_from_str("--pages")?.unwrap_or(20usize),
            args.opt_value_from_str("--workers")?.unwrap_or(6usize),
            args.opt_value_from_str("--per-host")?.unwrap_or(2u64),
            args.opt_value_from_str("--delay-ms")?.unwrap_or(5u64),
            args.opt_value_from_str::<_, i64>("--max-pages")?,
            args.opt_value_from_str("--timeout-ms")?
                .unwrap_or(20_000u64),
        ))
    })();
    let (hosts, pages, workers, per_host, delay_ms, max_pages, timeout_ms) =
        match (parsed, args.finish()) {
            (Ok(values), rest) if rest.is_empty() && values.0 > 0 && values.1 > 0 => values,
            (Err(e), _) => return usage(&e.to_string()),
            (_, rest) => {
                return usage(&format!(
                    "need --hosts and --pages above 0; unknown arguments {rest:?}"
                ))
            }
        };

    let sites = start_site(hosts, pages);
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build();
    let crawler = Arc::new(Crawler {
        agent: config.into(),
        frontier: Mutex::default(),
        changed: Cond::new(),
        visited: Map::new(),
        hosts: Map::new(),
        per_host: per_host.max(1),
        delay: Duration::from_millis(delay_ms),
        fetched: Counter::new(),
        skipped_by_robots: Counter::new(),
        errors: Mutex::default(),
        min_gap: Mutex::default(),
    });
    println!(
        "crawler: {hosts} hosts x {pages} pages on 127.0.0.1 ports {:?}; {workers} workers, {per_host} per host, {delay_ms} ms between requests to a host",
        sites.iter().map(|s| s.port).collect::<Vec<_>>()
    );

    let started = Instant::now();
    let (ctx, stop) = Context::background().with_timeout(Duration::from_millis(timeout_ms));
    crawler.offer(format!("http://127.0.0.1:{}/page/0", sites[0].port));
    let pool = Arc::new(WaitGroup::new());
    for _ in 0..workers.max(1) {
        let (crawler, ctx, stop) = (Arc::clone(&crawler), ctx.clone(), stop.clone());
        pool.go(move || {
            while let Some(url) = crawler.next(&ctx) {
                if let Err(e) = crawler.crawl_one(&url, &ctx) {
                    crawler.errors.lock().push(e);
                }
                crawler.finished();
                if max_pages.is_some_and(|max| crawler.fetched.value() >= max) {
                    stop.cancel();
                }
            }
        });
    }
    pool.wait();
    let elapsed = started.elapsed();
    let how = match ctx.err() {
        None => "the frontier emptied".to_string(),
        Some(e) => format!("stopped: {e}"),
    };
    let cancelled = ctx.err().is_some() && max_pages.is_some();
    stop.cancel();

    for site in &sites {
        for _ in &site.handlers {
            site.server.unblock();
        }
    }
    let mut page_fetches = 0;
    let (mut repeats, mut private_fetches, mut max_in_flight) = (0, 0, 0);
    for site in sites {
        for handler in site.handlers {
            handler.join().expect("a handler does not panic");
        }
        for (path, count) in site.log.hits.lock().iter() {
            repeats += count - 1;
            private_fetches += usize::from(path.starts_with("/private/")) * count;
            page_fetches += usize::from(path.starts_with("/page/")) * count;
        }
        max_in_flight = max_in_flight.max(site.log.max_in_flight.load(Ordering::SeqCst));
    }
    let fetched = crawler.fetched.value() as usize;
    let errors = crawler.errors.lock();
    let min_gap = crawler.min_gap.lock().unwrap_or(Duration::MAX);
    for e in errors.iter().take(5) {
        println!("error: {e}");
    }
    println!(
        "{how} after {elapsed:.2?}; smallest gap between request starts to one host: {min_gap:.2?}"
    );
    println!(
        "summary: pages={} fetched={fetched} server_page_fetches={page_fetches} repeats={repeats} private_fetches={private_fetches}",
        hosts * pages
    );
    println!(
        "summary: skipped_by_robots={} max_in_flight_per_host={max_in_flight} per_host={per_host} errors={}",
        crawler.skipped_by_robots.value(),
        errors.len()
    );

    let checks = [
        ("no URL was fetched twice", repeats == 0),
        (
            "no path disallowed by robots.txt was fetched",
            private_fetches == 0,
        ),
        (
            "the servers saw exactly the pages the crawler fetched",
            page_fetches == fetched,
        ),
        (
            "every page was fetched (unless the crawl was cut short)",
            cancelled || fetched == hosts * pages,
        ),
        (
            "a cut-short crawl stopped promptly",
            !cancelled || fetched < hosts * pages,
        ),
        (
            "never more than --per-host requests in flight to one host",
            max_in_flight as u64 <= per_host.max(1),
        ),
        (
            "request starts to one host were at least --delay-ms apart",
            min_gap >= crawler.delay,
        ),
        (
            "no request failed (a cut-short crawl may abandon waits)",
            errors.is_empty() || cancelled,
        ),
    ];
    let mut invariants = Invariants::default();
    for (what, held) in checks {
        invariants.check(what, held);
    }
    invariants.verdict()
}
