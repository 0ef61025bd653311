//! The guard `#[require_auth]` expands to: an extractor that verifies and authorizes before the
//! handler's own extractors are created.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::respond::refuse;
use super::{Verifying, VerifyingState, validator, verify_then};
use crate::answer::AuthError;
use crate::policy::{authorize, authorize_step_up};
use crate::verify::{Auth0, Verified};

/// The guard behind `#[require_auth]`: authenticates, checks the route's requirement, and only then
/// extracts the handler's own parameters `A`, so no body is read for a refused request.
///
/// Named for the message a user reads when calling a protected handler directly ("expected
/// `ExtractedByActix<..>`, found `Claims`"): its one parameter comes from Actix-web, from a
/// request.
#[doc(hidden)]
pub struct ExtractedByActix<R, A> {
    args: A,
    requirement: PhantomData<fn() -> R>,
}

impl<R, A> ExtractedByActix<R, A> {
    /// The handler's own parameters.
    pub fn into_inner(self) -> A {
        self.args
    }
}

impl<R, A> std::fmt::Debug for ExtractedByActix<R, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtractedByActix")
    }
}

/// What a route requires, fixed at compile time by `#[require_auth]`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    pub all_scopes: &'static [&'static str],
    pub any_scopes: &'static [&'static str],
    pub permissions: &'static [&'static str],
    pub acr_values: &'static [&'static str],
    pub max_age: Option<u64>,
}

/// Carries a route's [`Requirement`] in a type, so the guard extractor can read it.
#[doc(hidden)]
pub trait Requires {
    const REQUIREMENT: Requirement;
}

/// The requirement of a bare `#[require_auth]`: a valid access token, nothing more. A fixed type,
/// so the bare form generates no item next to the handler and works inside an `impl` block.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Authenticated;

impl Requires for Authenticated {
    const REQUIREMENT: Requirement = Requirement {
        all_scopes: &[],
        any_scopes: &[],
        permissions: &[],
        acr_values: &[],
        max_age: None,
    };
}

pub(super) fn check_requirement<R: Requires>(req: &HttpRequest, v: Verified) -> Result<(), actix_web::Error> {
    let r = R::REQUIREMENT;
    let now = || validator(req).map_or_else(crate::clock::now, Auth0::now);
    authorize_step_up(&v.claims, r.acr_values, r.max_age, now)
        .and_then(|()| authorize(&v.claims, r.all_scopes, r.any_scopes, r.permissions))
        .map_err(|error| refuse(req, &v, error))
}

pin_project_lite::pin_project! {
    #[doc(hidden)]
    #[project = GuardProj]
    pub enum GuardedFuture<R, A: FromRequest> {
        Failed { error: Option<actix_web::Error>, requirement: PhantomData<fn() -> R> },
        Authorizing { verifying: Verifying<()>, req: HttpRequest, payload: Payload },
        Extracting { #[pin] args: A::Future },
        Done,
    }
}

impl<R: Requires, A: FromRequest + 'static> FromRequest for ExtractedByActix<R, A> {
    type Error = actix_web::Error;
    type Future = GuardedFuture<R, A>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let mut verifying = verify_then(req, check_requirement::<R>);
        match &mut verifying.state {
            // The common case, keys cached: decided now, so the parameters are extracted at once.
            VerifyingState::Ready(result) => match result.take() {
                Some(Ok(())) => GuardedFuture::Extracting {
                    args: A::from_request(req, payload),
                },
                error => GuardedFuture::Failed {
                    error: error.and_then(Result::err),
                    requirement: PhantomData,
                },
            },
            // Waiting for keys: keep the body aside until the request is authorised.
            VerifyingState::Waiting { .. } => GuardedFuture::Authorizing {
                verifying,
                req: req.clone(),
                payload: payload.take(),
            },
        }
    }
}

impl<R, A: FromRequest> Future for GuardedFuture<R, A> {
    type Output = Result<ExtractedByActix<R, A>, actix_web::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                GuardProj::Failed { error, .. } => {
                    let error = error
                        .take()
                        .unwrap_or_else(|| AuthError::Internal("polled after completion").into());
                    return Poll::Ready(Err(error));
                }
                GuardProj::Authorizing {
                    verifying,
                    req,
                    payload,
                } => {
                    if let Err(e) = std::task::ready!(Pin::new(verifying).poll(cx)) {
                        return Poll::Ready(Err(e));
                    }
                    let args = A::from_request(req, payload);
                    self.set(GuardedFuture::Extracting { args });
                }
                GuardProj::Extracting { args } => {
                    let args = std::task::ready!(args.poll(cx)).map_err(Into::into)?;
                    self.set(GuardedFuture::Done);
                    return Poll::Ready(Ok(ExtractedByActix {
                        args,
                        requirement: PhantomData,
                    }));
                }
                GuardProj::Done => return Poll::Pending,
            }
        }
    }
}
