//! The Actix quickstart (`examples/quickstart.rs`) answers every conformance case.

#![allow(clippy::expect_used)]

mod conformance;

use std::net::TcpListener;

use auth0_runtime::Auth0;
use conformance::Served;

struct Stop(Option<actix_web::dev::ServerHandle>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            drop(handle.stop(false));
        }
    }
}

fn serve(auth0: Option<Auth0>) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(move || examples::quickstart::actix_app(auth0.clone()))
                .workers(1)
                .listen(listener)
                .expect("listen")
                .run();
            let _ = tx.send(server.handle());
            let _ = server.await;
        });
    });
    Served {
        base,
        stop: Box::new(Stop(rx.recv().ok())),
    }
}

conformance_tests!(serve);
