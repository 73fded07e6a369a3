//! The time the services record: now, to the millisecond, which every store
//! keeps exactly (MongoDB keeps no finer), so a value reads back as written.

use chrono::{DateTime, SubsecRound, Utc};

pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}
