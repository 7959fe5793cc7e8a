//! Route registration that records what it registers.
//!
//! Every route goes through [`Routes::add`], which both builds the actix resource
//! and notes `(method, path)`. The OpenAPI test compares that record with the
//! spec, so a route added without documentation (or documented but never
//! registered) fails the build's tests; the record cannot drift from the server
//! because it is made by the same calls.

use actix_web::dev::HttpServiceFactory;
use actix_web::http::Method;
use actix_web::{FromRequest, Handler, Resource, Responder, web};

use crate::error::ApiError;

pub struct Routes {
    prefix: &'static str,
    /// `(method, full path template)` of every route, in registration order.
    pub table: Vec<(Method, String)>,
    resources: Vec<Resource>,
}

/// Route templates, interned once at start-up (a few dozen strings): each resource
/// is named after its template, and the metrics middleware maps the matched name
/// back to the `&'static str` here, so a request's labels need no allocation and
/// no second match of its path.
static TEMPLATES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

thread_local! {
    /// The templates this thread has looked up: after the first request of each
    /// route, a lookup takes no lock both HTTP workers share.
    static SEEN: std::cell::RefCell<Vec<&'static str>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The interned template of a matched resource name.
pub fn template(name: &str) -> Option<&'static str> {
    SEEN.with_borrow_mut(|seen| {
        if let Some(found) = seen.iter().copied().find(|t| *t == name) {
            return Some(found);
        }
        let found = TEMPLATES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .find(|t| *t == name)?;
        seen.push(found);
        Some(found)
    })
}

fn intern(template: String) -> &'static str {
    let mut all = TEMPLATES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(existing) = all.iter().copied().find(|t| *t == template) {
        return existing;
    }
    let leaked: &'static str = Box::leak(template.into_boxed_str());
    all.push(leaked);
    leaked
}

/// The methods of one path.
pub struct Methods {
    path: String,
    resource: Resource,
    methods: Vec<Method>,
}

macro_rules! method {
    ($name:ident, $ctor:ident, $method:ident) => {
        pub fn $name<F, Args>(mut self, handler: F) -> Self
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.resource = self.resource.route(web::$ctor().to(handler));
            self.methods.push(Method::$method);
            self
        }
    };
}

impl Methods {
    method!(get, get, GET);
    method!(post, post, POST);
    method!(put, put, PUT);
    method!(patch, patch, PATCH);
    method!(delete, delete, DELETE);
}

impl Routes {
    pub fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            table: Vec::new(),
            resources: Vec::new(),
        }
    }

    /// Registers the methods `build` adds at `path`; any other method gets 405.
    pub fn add(&mut self, path: &'static str, build: impl FnOnce(Methods) -> Methods) {
        let full = intern(format!("{}{path}", self.prefix));
        let m = build(Methods {
            path: full.to_owned(),
            resource: web::resource(path).name(full),
            methods: Vec::new(),
        });
        let allow = m
            .methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        for method in m.methods {
            self.table.push((method, m.path.clone()));
        }
        let refuse =
            web::route().to(move || {
                let allow = allow.clone();
                async move {
                    Err::<actix_web::HttpResponse, _>(ApiError::method_not_allowed_but(&allow))
                }
            });
        self.resources.push(m.resource.default_service(refuse));
    }

    /// The actix services, to be mounted under the prefix.
    pub fn into_services(self) -> Vec<impl HttpServiceFactory + 'static> {
        self.resources
    }
}
