//! The engine's routes as they are registered: collected by path, so that
//! the methods of one path share one resource (actix answers 405 from the
//! first resource of a path, it does not try a second one), and each
//! resource wrapped to count its requests in
//! `collab_http_requests_total{route, status}`, where `route` is the
//! matched pattern (`/ws/{document_id:.*}`, under a host's scope with its
//! prefix), never the raw path: the number of series stays bounded.
//!
//! A middleware on the engine's resources rather than on an app: the
//! engine is mounted into a host's app or scope through a `ServiceConfig`,
//! which takes no middleware, and a catch-all scope would hide the host's
//! routes registered after it.

use std::sync::Arc;

use actix_web::dev::Service;
use actix_web::{Route, web};

use crate::metrics::Metrics;

/// Routes being registered (see the module docs): each sub-module of
/// [`crate::http`] adds its own with [`Routes::route`], like
/// `ServiceConfig::route`.
#[derive(Default)]
pub struct Routes {
    by_path: Vec<(String, Vec<Route>)>,
}

impl Routes {
    /// Adds `route` (e.g. `web::get().to(handler)`) at `path`.
    pub fn route(&mut self, path: &str, route: Route) -> &mut Self {
        match self.by_path.iter_mut().find(|(p, _)| p == path) {
            Some((_, routes)) => routes.push(route),
            None => self.by_path.push((path.to_owned(), vec![route])),
        }
        self
    }

    /// Registers every path, in the order they were first added, each as
    /// one resource whose requests are counted in `metrics`.
    pub fn register(self, cfg: &mut web::ServiceConfig, metrics: &Arc<Metrics>) {
        for (path, routes) in self.by_path {
            let resource = routes
                .into_iter()
                .fold(web::resource(path), |resource, route| resource.route(route));
            let metrics = metrics.clone();
            cfg.service(resource.wrap_fn(move |req, service| {
                let metrics = metrics.clone();
                let pattern = req.match_pattern();
                let answer = service.call(req);
                async move {
                    let answer = answer.await;
                    let status = match &answer {
                        Ok(response) => response.status(),
                        Err(e) => e.as_response_error().status_code(),
                    };
                    let pattern = pattern.as_deref().unwrap_or("unmatched");
                    metrics.http_request(pattern, status.as_u16());
                    answer
                }
            }));
        }
    }
}
