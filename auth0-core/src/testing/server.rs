//! The HTTPS side of the test issuer: its own CA, and a minimal HTTP/1.1 responder (one request per
//! connection, `Connection: close`) on a tokio current-thread runtime in a thread of its own.

use std::io;
use std::net::TcpListener as StdTcpListener;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use super::Shared;

/// Longest request head read.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Longest request body read (a token request is a few KiB).
const MAX_REQUEST_BODY: usize = 64 * 1024;
/// A connection that sends no complete request head within this time is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Size of the body sent by [`Fault::Oversized`](super::Fault::Oversized).
pub(super) const OVERSIZED_BODY: usize = 2 * 1024 * 1024;

fn rcgen_error(error: rcgen::Error) -> io::Error {
    io::Error::other(format!("rcgen: {error}"))
}

/// A fresh CA and a leaf for `localhost` and `127.0.0.1` signed by it.
#[cfg_attr(
    not(feature = "redis"),
    allow(dead_code, reason = "the PEM files are for the test Redis server")
)]
pub(super) struct Identity {
    /// The CA certificate, PEM.
    pub(super) ca_pem: String,
    ca_der: rustls::pki_types::CertificateDer<'static>,
    /// The leaf certificate, PEM.
    pub(super) leaf_pem: String,
    leaf_der: rustls::pki_types::CertificateDer<'static>,
    /// The leaf's private key, PKCS#8 PEM.
    pub(super) key_pem: String,
    key_der: Vec<u8>,
}

pub(super) fn identity() -> io::Result<Identity> {
    let ca_key = KeyPair::generate().map_err(rcgen_error)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "auth0-runtime test issuer CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(rcgen_error)?;
    let ca = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(rcgen_error)?;
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).map_err(rcgen_error)?;
    leaf_params.distinguished_name = DistinguishedName::new();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(rcgen_error)?;
    Ok(Identity {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        leaf_pem: leaf.pem(),
        leaf_der: leaf.der().clone(),
        key_pem: leaf_key.serialize_pem(),
        key_der: leaf_key.serialize_der(),
    })
}

/// A fresh [`Identity`]: the CA in PEM, and the server configuration presenting the leaf.
pub(super) fn tls_identity() -> io::Result<(String, Arc<rustls::ServerConfig>)> {
    let id = identity()?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![id.leaf_der, id.ca_der], key)
        .map_err(io::Error::other)?;
    Ok((id.ca_pem, Arc::new(config)))
}

/// Serves `listener` on a thread of its own until the returned sender fires (or is dropped).
pub(super) fn spawn(
    listener: StdTcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
) -> io::Result<(oneshot::Sender<()>, JoinHandle<()>)> {
    let (shutdown, shutdown_rx) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::sync_channel::<io::Result<()>>(1);
    let thread = std::thread::Builder::new()
        .name("auth0-test-issuer".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                tokio::spawn(accept_loop(listener, TlsAcceptor::from(tls), shared));
                let _ = ready_tx.send(Ok(()));
                // Sent or dropped: either way, stop.
                let _ = shutdown_rx.await;
            });
            // Dropping the runtime cancels the accept loop and every open connection.
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((shutdown, thread)),
        Ok(Err(error)) => {
            let _ = thread.join();
            Err(error)
        }
        Err(_) => {
            let _ = thread.join();
            Err(io::Error::other("the test issuer's server thread stopped"))
        }
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                // Out of file descriptors or similar: breathe, then keep serving.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if shared.down() {
            drop(tcp);
            continue;
        }
        tokio::spawn(serve_connection(tcp, acceptor.clone(), Arc::clone(&shared)));
    }
}

async fn serve_connection(tcp: TcpStream, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let Ok(Ok(mut stream)) = tokio::time::timeout(READ_TIMEOUT, acceptor.accept(tcp)).await else {
        return;
    };
    let Ok(Ok(Some(request))) = tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await else {
        return;
    };
    let method = request.method.clone();
    let Some(response) = shared.respond(&request) else {
        return;
    };
    if let Some(delay) = response.delay {
        tokio::time::sleep(delay).await;
    }
    if response.hang_up {
        return;
    }
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nConnection: close\r\n",
        response.status, response.content_type
    );
    if !response.unframed {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    if let Some(max_age) = response.max_age {
        head.push_str(&format!("Cache-Control: public, max-age={max_age}\r\n"));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    if method != "HEAD" && stream.write_all(&response.body).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
}

/// One request as the issuer sees it.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) method: String,
    /// The path, query dropped.
    pub(super) path: String,
    /// Header names in lower case, values as sent (non-UTF-8 values dropped).
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Request {
    /// The first value of the header `name` (lower case).
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the request head and its body (`Content-Length`, capped).
async fn read_request<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<Request>> {
    let mut data = Vec::with_capacity(1024);
    let mut buffer = [0u8; 2048];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|window| window == b"\r\n\r\n") {
            break at;
        }
        if data.len() > MAX_REQUEST_HEAD {
            return Ok(None);
        }
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(None);
        }
        data.extend_from_slice(buffer.get(..read).unwrap_or_default());
    };
    let Ok(head) = std::str::from_utf8(data.get(..head_end).unwrap_or_default()) else {
        return Ok(None);
    };
    let mut lines = head.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let path = target.split(['?', '#']).next().unwrap_or(target).to_owned();
    let method = method.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST_BODY {
        return Ok(None);
    }
    let mut body = data.get(head_end + 4..).unwrap_or_default().to_vec();
    while body.len() < length {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(None);
        }
        body.extend_from_slice(buffer.get(..read).unwrap_or_default());
    }
    body.truncate(length);
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}
