//! The axum quickstart (`examples/axum_quickstart.rs`) answers every conformance case exactly as
//! the Actix one does.

#![allow(clippy::expect_used)]

mod conformance;

use std::net::SocketAddr;

use auth0_runtime::Auth0;
use conformance::Served;

struct Stop(tokio::task::JoinHandle<()>);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn serve(auth0: Option<Auth0>) -> Served {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    listener.set_nonblocking(true).expect("non-blocking");
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let app = examples::axum_quickstart::router(auth0).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Served {
        base,
        stop: Box::new(Stop(server)),
    }
}

conformance_tests!(serve);
