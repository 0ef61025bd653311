//! A real `redis-server` on loopback (features `testing` and `redis`).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::kit_failure;

/// How long a server may take to answer its first `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A real `redis-server` on `127.0.0.1` and a free port, without persistence, killed on drop:
/// for tests of a [`RedisReplayStore`](crate::RedisReplayStore) shared by several validators.
///
/// It runs the `redis-server` on the `PATH` (or the one `REDIS_SERVER` names). When there is none,
/// starting fails with a message saying how to install it: the project's `scripts/test.sh`
/// installs it (`apt-get install redis-server`) before running the tests.
///
/// [`stop`](Self::stop) and [`restart`](Self::restart) (on the same port) play an outage;
/// [`pause`](Self::pause) and [`resume`](Self::resume) a server that hangs.
/// [`start_tls`](Self::start_tls) adds a TLS port with a certificate from a CA of its own, for
/// `rediss://` URLs.
///
/// ```no_run
/// use auth0_runtime::testing::{RedisServer, TestIssuer};
/// use auth0_runtime::{Auth0, RedisReplayStore};
///
/// let redis = RedisServer::start();
/// let issuer = TestIssuer::start();
/// let config = issuer
///     .config("https://api.example.com")
///     .replay_store(RedisReplayStore::new(&redis.url())?);
/// let auth0 = Auth0::new(config)?;
/// # let _ = auth0;
/// # Ok::<(), auth0_runtime::ConfigError>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisServer {
    port: u16,
    tls: Option<Tls>,
    args: Vec<String>,
    dir: PathBuf,
    child: Option<Child>,
}

/// The TLS side of a server: its port and the CA of its certificate.
struct Tls {
    port: u16,
    ca_pem: String,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("tls_port", &self.tls.as_ref().map(|tls| tls.port))
            .field("args", &self.args)
            .field("running", &self.child.is_some())
            .finish()
    }
}

impl RedisServer {
    /// Starts a server on a free port of `127.0.0.1`.
    ///
    /// # Panics
    ///
    /// If it cannot start, saying why: most often, `redis-server` is not installed (run
    /// `scripts/test.sh`, which installs it).
    #[track_caller]
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// As [`Self::start`], with more `redis-server` arguments (`["--requirepass", "s3cret"]`).
    ///
    /// # Panics
    ///
    /// As [`Self::start`].
    #[track_caller]
    pub fn start_with(args: &[&str]) -> Self {
        match Self::try_start_with(args) {
            Ok(server) => server,
            Err(error) => kit_failure("starting redis-server", error),
        }
    }

    /// As [`Self::start`], with a TLS port next to the plain one: [`Self::tls_url`] is
    /// `rediss://localhost:PORT`, with a certificate for `localhost` and `127.0.0.1` from a CA of
    /// its own, [`Self::ca_pem`]. Clients need not present a certificate.
    ///
    /// # Panics
    ///
    /// As [`Self::start`].
    #[track_caller]
    pub fn start_tls() -> Self {
        match Self::try_start(&[], true) {
            Ok(server) => server,
            Err(error) => kit_failure("starting redis-server", error),
        }
    }

    /// Starts a server with more arguments, or says why it could not.
    pub fn try_start_with(args: &[&str]) -> io::Result<Self> {
        Self::try_start(args, false)
    }

    fn try_start(args: &[&str], tls: bool) -> io::Result<Self> {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "auth0-redis-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let mut args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
        let tls = if tls {
            let identity = super::server::identity()?;
            std::fs::write(dir.join("ca.pem"), &identity.ca_pem)?;
            std::fs::write(dir.join("server.pem"), &identity.leaf_pem)?;
            std::fs::write(dir.join("server.key"), &identity.key_pem)?;
            for (option, file) in [
                ("--tls-cert-file", "server.pem"),
                ("--tls-key-file", "server.key"),
                ("--tls-ca-cert-file", "ca.pem"),
            ] {
                args.push(option.to_owned());
                args.push(dir.join(file).to_string_lossy().into_owned());
            }
            args.extend(["--tls-auth-clients".to_owned(), "no".to_owned()]);
            Some(Tls {
                port: 0,
                ca_pem: identity.ca_pem,
            })
        } else {
            None
        };
        let mut server = Self {
            port: 0,
            tls,
            args,
            dir,
            child: None,
        };
        // A port free a moment ago may be taken by the time the server binds it: try again.
        let mut last = None;
        for _ in 0..5 {
            server.port = free_port()?;
            if let Some(tls) = &mut server.tls {
                tls.port = free_port()?;
            }
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(error),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free port")))
    }

    /// The port it listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`: database 0; append `/N` for another.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `rediss://localhost:TLS_PORT` for a server from [`Self::start_tls`].
    pub fn tls_url(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|tls| format!("rediss://localhost:{}", tls.port))
    }

    /// The CA (PEM) of the TLS certificate of a server from [`Self::start_tls`].
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|tls| tls.ca_pem.as_str())
    }

    /// Its working directory (`--dir`): its log, `redis.log`, and any dump file. Removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the server process is running (it may be paused).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills the server (`SIGKILL`: no goodbye to its clients); its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty, after [`Self::stop`] (or stops it first).
    ///
    /// # Panics
    ///
    /// If it cannot start again.
    #[track_caller]
    pub fn restart(&mut self) {
        self.stop();
        if let Err(error) = self.launch() {
            kit_failure("restarting redis-server", error);
        }
    }

    /// Freezes the server (`SIGSTOP`): connections stay open and nothing answers.
    ///
    /// # Panics
    ///
    /// If the signal cannot be sent.
    #[track_caller]
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a server frozen by [`Self::pause`] (`SIGCONT`).
    ///
    /// # Panics
    ///
    /// If the signal cannot be sent.
    #[track_caller]
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    #[track_caller]
    fn signal(&self, signal: &str) {
        let Some(child) = &self.child else {
            kit_failure("signalling redis-server", "it is not running");
        };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status();
        if !status.is_ok_and(|s| s.success()) {
            kit_failure("signalling redis-server", format!("kill {signal} failed"));
        }
    }

    /// Starts the process on `self.port` and waits until it answers.
    fn launch(&mut self) -> io::Result<()> {
        let program = std::env::var_os("REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        let mut child = Command::new(&program)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log"])
            .args(
                self.tls
                    .iter()
                    .flat_map(|tls| ["--tls-port".to_owned(), tls.port.to_string()]),
            )
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| match error.kind() {
                io::ErrorKind::NotFound => io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "{} is not installed: run scripts/test.sh, which installs it \
                         (apt-get install redis-server), or set REDIS_SERVER to its path",
                        program.to_string_lossy()
                    ),
                ),
                _ => error,
            })?;
        let started = Instant::now();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(3).collect();
                return Err(io::Error::other(format!(
                    "redis-server exited ({status}) on port {}: {}",
                    self.port,
                    tail.join(" / ")
                )));
            }
            if answers(address) {
                self.child = Some(child);
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other(format!(
                    "redis-server did not answer on port {} within {START_TIMEOUT:?}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// Whether a Redis server answers `PING` at `address` (any reply: `+PONG`, or `-NOAUTH` with a
/// password).
fn answers(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 1];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && matches!(reply[0], b'+' | b'-')
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
