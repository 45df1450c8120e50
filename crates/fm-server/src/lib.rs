//! fm-server: `fm serve`. Alert webhooks are written to the durable store before they are
//! acknowledged; workers claim runs from the store with a lease, run them, journal every stage,
//! and resume interrupted runs without repeating a remediation.

pub mod alert;
pub mod config;
pub mod config_locate;
pub mod intake;
pub mod metrics;
pub mod recorder;
pub mod routes;
pub mod serve;
pub mod state;
pub mod webhooks;
pub mod worker;

pub use serve::{
    check, check_file, launch, run_until_signal, start, start_from_file, Checked, Running,
    StartError,
};
