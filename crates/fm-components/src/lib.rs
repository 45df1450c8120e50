//! fm's built-in components, one file each, registered in [`builtin_registry`].

pub mod delay;
pub mod http;
pub mod json_transform;
pub mod logger;

use std::sync::Arc;

use fm_core::Registry;

pub use http::HttpRequest;

/// Every built-in component, including the control-flow ones.
pub fn builtin_registry() -> Registry {
    let mut r = Registry::new();
    fm_core::register_control(&mut r);
    r.register(Arc::new(HttpRequest::new()));
    r.register(Arc::new(json_transform::JsonTransform));
    r.register(Arc::new(logger::Logger));
    r.register(Arc::new(delay::Delay));
    r
}
