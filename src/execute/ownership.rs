//! "dstart removes only what it made" (SPEC "Orders"): whether a container, volume or network
//! found under one of a unit's names is the unit's, decided from its labels alone, and the
//! record of what a run left alone because it is not (the run then ends with exit 1).

use std::sync::Mutex;

use crate::output;
pub use crate::plan::owner::Owner;

/// What a run left alone because it is not the unit's: `kind name`, in the order met.
#[derive(Debug, Default)]
pub struct Refusals(Mutex<Vec<String>>);

impl Refusals {
    /// Warns that `kind` `name` is not removed (or recreated: `what`) and remembers it.
    pub fn refuse(&self, kind: &str, name: &str, what: &str, owner: &Owner) {
        output::warn(
            "lifecycle",
            format!("not {what} {kind} {name}: {}", owner.why()),
        );
        if let Ok(mut list) = self.0.lock() {
            let entry = format!("{kind} {name}");
            if !list.contains(&entry) {
                list.push(entry);
            }
        }
    }

    /// Everything refused so far.
    pub fn list(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
