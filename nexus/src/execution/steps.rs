//! Step accounting: the costs and the meter of the SCORE interface (`nexus-score`).

pub use nexus_score::steps::{StepCosts, StepMeter};
